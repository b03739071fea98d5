//! A vendored .conda (a zip of zstd tars), raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod scratch;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::package_archive(data, true, scratch::dir());
});
