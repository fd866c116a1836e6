#![no_main]
libfuzzer_sys::fuzz_target!(init: edgeflags_fuzz::init("identity_token"), |data: &[u8]| {
    edgeflags_fuzz::identity_token(data)
});
