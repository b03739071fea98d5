//! Plain I/O that staging and the tools share, with no knowledge of conda apps or Cloud
//! Foundry: pinned downloads, untrusted archives, the two programs the buildpack shells out to,
//! file-system moves, digests, scratch directories, and the YAML depth guard.

pub(crate) mod archive;
pub(crate) mod digest;
pub(crate) mod download;
pub(crate) mod fsutil;
pub(crate) mod process;
pub(crate) mod scratch;
pub(crate) mod yaml_depth;
