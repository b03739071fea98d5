//! The local Cloud Foundry lifecycle, seen from the user's side: scripted buildpack zips are
//! staged with `local-cf stage`, droplets started with `local-cf launch`, and
//! the tests assert exit codes, log lines, droplet contents and what the app prints.
//!
//! Staging with `--no-network` and launching need root (namespaces), as the harness does.
//!
//! By concern: `builder.rs` (the phases and their exit codes), `container.rs`
//! (what Diego does around the builder), `launch.rs` and `agreement.rs` (our model against
//! Cloud Foundry's real builder); the scripted buildpacks they share are below.

use crate::support;

mod agreement;
mod builder;
mod container;
mod launch;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::LOCAL_CF;
use crate::support::scripted::{Buildpack, Outcome, Workspace, droplet_members, zip_with_entry};

/// The builder's name for a buildpack's directories: xxhash64 of its key, `%016x`.
fn xxhash(key: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh64::xxh64(key.as_bytes(), 0))
}

/// A supply buildpack that declares itself in config.yml and leaves a marker in DEPS/IDX.
fn supply_buildpack(file_name: &str, name: &str) -> Buildpack {
    Buildpack::new(file_name).script(
        "supply",
        &format!(
            "echo \"{name} supply: $# args, index $4\"\n\
             printf 'name: {name}\\nversion: 1.0.{name_len}\\n' > \"$3/$4/config.yml\"\n\
             echo {name} > \"$3/$4/marker\"",
            name_len = name.len()
        ),
    )
}

/// A final buildpack with supply and finalize, releasing `web: COMMAND`.
fn final_buildpack(file_name: &str, command: &str) -> Buildpack {
    Buildpack::new(file_name)
        .script(
            "supply",
            "printf 'name: final\\nversion: 2.0\\n' > \"$3/$4/config.yml\"",
        )
        .script(
            "finalize",
            "echo \"finalize: $# args, index $4\"\n\
             echo done > \"$1/finalized\"\n\
             echo 'export FROM_PROFILE_D=1' > \"$5/0_final.sh\"",
        )
        .release_web(command)
}

fn launch(droplet: &Path, extra: &[&str]) -> Outcome {
    let output = Command::new(LOCAL_CF)
        .arg("launch")
        .arg(droplet)
        .args(support::world::launch_args())
        .args(extra)
        .output()
        .expect("run launch");
    Outcome::of(&output)
}

fn staging_info(workspace: &Workspace) -> serde_json::Value {
    let members = droplet_members(&workspace.droplet());
    let info = &members
        .get("./staging_info.yml")
        .expect("staging_info.yml in the droplet")
        .content;
    serde_json::from_str(info).expect("staging_info.yml is JSON")
}
