//! Vendored conda packages: an app's `vendor/` folder indexed into a local channel so it
//! installs with no network.

use std::path::Path;

use crate::environment::LocalChannel;

#[derive(Debug, thiserror::Error)]
pub(crate) enum VendorError {
    #[error("vendored packages are not supported yet")]
    Unsupported,
}

/// Indexes `vendor/` into a channel under `work`; `None` when it holds no conda packages.
pub(crate) fn index(vendor_dir: &Path, _work: &Path) -> Result<Option<LocalChannel>, VendorError> {
    let has_packages =
        std::fs::read_dir(vendor_dir).is_ok_and(|mut entries| entries.next().is_some());
    if has_packages {
        Err(VendorError::Unsupported)
    } else {
        Ok(None)
    }
}
