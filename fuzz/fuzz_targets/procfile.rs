//! The app's Procfile.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::procfile(data);
});
