#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("ofrep_request"), |data: &[u8]| {
    edgeflags_fuzz::ofrep_request(data)
});
