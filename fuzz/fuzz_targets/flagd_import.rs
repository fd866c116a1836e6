#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("flagd_import"), |data: &[u8]| {
    edgeflags_fuzz::flagd_import(data)
});
