#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tmda_fuzz::dbm_file(data));
