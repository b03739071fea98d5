//! The buildpack's manifest.yml (an operator may upload a hand-edited zip).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::manifest_yml(data);
});
