#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("blob_gzip"), |data: &[u8]| {
    edgeflags_fuzz::blob_gzip(data)
});
