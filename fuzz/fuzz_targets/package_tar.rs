//! The tar of a vendored .tar.bz2, uncompressed: tar headers, long names, PAX records, links.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::package_tar(data);
});
