//! The test world: the offline conda fixtures (built once per run by
//! `fixtures/conda/build.py`), a loopback HTTP server that serves them and counts requests
//! (and misbehaves on request), the buildpack packaged through its own `package` command with
//! a manifest pointing at that server, and `stage` / `launch` run as a user would.
//!
//! By concern: `fixture.rs` (the fixtures, scratch dirs, apps), `packaging.rs` (the zip and
//! the stand-in buildpacks), `staging.rs` (stage, launch, push), `droplet.rs` (reading
//! droplets), `developer.rs` (a developer's conda and `vendor`), all re-exported here so stories
//! name them `support::...` (the std imports below serve those modules, which each have
//! `use super::*;`); and `support::scripted`, the scripted buildpacks of the stories about
//! `local-cf` itself.
#![allow(dead_code)]

pub(crate) mod canary;
pub(crate) mod memory_cgroup;
pub(crate) mod pip_index;
pub(crate) mod proxy;
pub(crate) mod real_conda;
pub(crate) mod scripted;
pub(crate) mod server;
pub(crate) mod tls;
#[path = "../world/mod.rs"]
pub(crate) mod world;

mod developer;
mod droplet;
mod fixture;
mod packaging;
mod staging;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

#[allow(unused_imports)]
pub(crate) use server::{Fault, Server};
#[allow(unused_imports)]
pub(crate) use {developer::*, droplet::*, fixture::*, packaging::*, staging::*};

/// The buildpack's executable, as the zip carries it (`package`, `vendor`, the scripts).
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_conda-buildpack");

/// The local Cloud Foundry that stages and launches: never in the zip.
pub(crate) const LOCAL_CF: &str = env!("CARGO_BIN_EXE_local-cf");

pub(crate) const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) fn repo() -> &'static Path {
    Path::new(REPO)
}
