//! A conda-lock.yml from the app (conda-lock v1).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::conda_lock_yml(data);
});
