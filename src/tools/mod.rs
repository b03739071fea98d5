//! What developers and release pipelines run, never a staging container: `vendor` (with its
//! pip fetching) on a developer's laptop, `package` and `manifest update` in a pipeline.

pub(crate) mod manifest_update;
pub(crate) mod packager;
pub(crate) mod pip_fetch;
pub(crate) mod vendor;
