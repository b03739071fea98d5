//! The stories of a developer, an operator and a release pipeline, as one test binary: the
//! buildpack packaged through its own `package` command, apps staged through the zip with
//! `local-cf stage` and started with `local-cf launch`, the conda double answering as conda
//! 26.7.1 on loopback channels.
//!
//! Lanes, by module (`ci/test` selects by these names):
//! - `every_platform::` runs on the model and again on Cloud Foundry's real builder and
//!   launcher (`CONDA_BP_PLATFORM=real`): the stories whose outcome depends on the platform.
//! - `model::` runs on the model alone: bad input, download faults, hostile archives, full
//!   disks, packaging and the release tools, whose outcome depends only on the buildpack.
//!
//! The platform is chosen once per process, by `CONDA_BP_PLATFORM`; no story changes it (the
//! stories that exist only on the real programs are their own binary, `tests/real_conda`).

mod every_platform;
mod model;
#[path = "../support/mod.rs"]
mod support;
