//! An @EXPLICIT spec-file.txt from the app.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::explicit_spec(data);
});
