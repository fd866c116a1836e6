#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("native_yaml"), |data: &[u8]| {
    edgeflags_fuzz::native_yaml(data)
});
