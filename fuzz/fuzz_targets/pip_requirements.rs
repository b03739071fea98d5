//! The lines of an environment.yml `pip:` section or a `-r` file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::pip_requirements(data);
});
