//! The real-conda lane, as one test binary: real conda 26.7.1 and its real packages
//! (`../shared/real/conda`) on Cloud Foundry's real builder and launcher
//! (`../shared/real/cf`). Without `../shared/real` every story says so and skips.
//!
//! Lanes: the real-conda lane. Every staging and launch in this process runs on the real
//! programs (`support::world::use_the_real_platform`, called by each story that stages), which
//! is why these stories are a binary of their own and not modules of `tests/stories`.
//!
//! By concern: `staging.rs` (pushes of the sample and the pydata app, conda's refusals, the
//! vendored app air-gapped), `lockfiles.rs` (pixi.lock and conda-lock.yml), `private_channels.rs`
//! (password-protected mirrors), `stacks.rs` (cflinuxfs5 with real conda), `conda_forge_scale.rs`
//! (a conda-forge-sized channel in a 1 GiB cgroup) and `agreement.rs` (the conda double against
//! real conda).

mod agreement;
mod conda_forge_scale;
mod lockfiles;
mod private_channels;
mod stacks;
mod staging;
#[path = "../support/mod.rs"]
mod support;
