//! metadata.json of a cache entry left by an earlier push.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::cache_metadata(data);
});
