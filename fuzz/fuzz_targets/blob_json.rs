#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("blob_json"), |data: &[u8]| {
    edgeflags_fuzz::blob_json(data)
});
