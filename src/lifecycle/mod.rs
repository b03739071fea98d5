//! Cloud Foundry's part, played locally: the builder (`stage`) and the launcher (`launch`).
//! Kept apart from the buildpack itself, which must never depend on it.
pub(crate) mod launch;
pub(crate) mod stage;
