//! Lanes: the model. What these stories assert depends only on the buildpack and the tools
//! (bad input, download faults, hostile archives, full disks and caches, packaging, the log's
//! wording, `manifest update`), so a second run on the real builder would test nothing new.

mod hardening_archives;
mod hardening_cache;
mod hardening_disk;
mod hardening_downloads;
mod hardening_input;
mod lockfiles;
mod manifest_update;
mod packaging;
mod pip;
mod private_channels;
mod staging_log;
