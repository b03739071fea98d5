//! Cloud Foundry's part, played locally: the builder (`stage`) and the launcher (`launch`).
//! Kept apart from the buildpack itself, which must never depend on it.
//!
//! `stage` and `launch` read top to bottom in their modules; the others are their parts:
//! unpacking buildpack zips, running scripts, the droplet archive, process types, the
//! metadata files, the environment, and the namespaces (the only unsafe code).
pub(crate) mod builder;
mod buildpack_zip;
mod cfignore;
mod droplet;
mod environment;
pub(crate) mod errors;
mod files;
pub(crate) mod launch;
mod metadata;
mod namespace;
mod process_types;
mod script;
pub(crate) mod stage;
