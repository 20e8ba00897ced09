#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| popa3d_fuzz::proxy(data));
