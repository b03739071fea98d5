//! A vendored wheel in vendor/pip (a zip), raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod scratch;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::python_distribution(data, true, scratch::dir());
});
