//! A pixi.lock from the app (rattler-lock v6), read for its default and a named environment.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    conda_buildpack::fuzzing::pixi_lock(data);
});
