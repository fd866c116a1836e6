#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("context_json"), |data: &[u8]| {
    edgeflags_fuzz::context_json(data)
});
