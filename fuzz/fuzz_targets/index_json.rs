//! info/index.json of a vendored package, and the repodata record made from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::index_json(data);
});
