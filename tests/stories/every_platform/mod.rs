//! Lanes: the model and the real platform (`ci/test` runs `every_platform::` on both). A story
//! here stages and launches only through `support`, so the same code runs on our model of the
//! builder and launcher and on Cloud Foundry's real ones.

mod airgapped;
mod app_cache;
mod ecosystem;
mod hardening_writes;
mod local_cf;
mod python_version;
mod stacks;
mod staging;
