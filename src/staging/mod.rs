//! What runs on a Cloud Foundry foundation, in the staging container: the script phases
//! (`detect`, `supply`, `finalize`, whose module also holds `release` and `compile`) and every
//! step they take, in the order `supply` takes them:
//!
//! - what the app brings: `app` (environment.yml, lockfiles, runtime.txt, settings), `vendored`
//!   (its `vendor/` folder), `python_version`;
//! - where conda comes from and how it is configured: `buildpack`, `stager`, `installer`,
//!   `conda`, `condarc`, `channels`, `private_channels`, `netrc`, `certs`, `services`,
//!   `secrets`, `solver`;
//! - building the environment: `environment`, `locked` (from a lockfile), `conda_failure`
//!   (what conda's output says went wrong), `pip`;
//! - between pushes and into the droplet: `cache`, `relocate`, `slim`;
//! - what the developer reads: `log`, `summary`.

pub(crate) mod app;
pub(crate) mod buildpack;
pub(crate) mod cache;
pub(crate) mod certs;
pub(crate) mod channels;
pub(crate) mod conda;
pub(crate) mod conda_failure;
pub(crate) mod condarc;
pub(crate) mod detect;
pub(crate) mod environment;
pub(crate) mod finalize;
pub(crate) mod installer;
pub(crate) mod locked;
pub(crate) mod log;
pub(crate) mod netrc;
pub(crate) mod pip;
pub(crate) mod private_channels;
pub(crate) mod python_version;
pub(crate) mod relocate;
pub(crate) mod secrets;
pub(crate) mod services;
pub(crate) mod slim;
pub(crate) mod solver;
pub(crate) mod stager;
pub(crate) mod summary;
pub(crate) mod supply;
pub(crate) mod vendored;
