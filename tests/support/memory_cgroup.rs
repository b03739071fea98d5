//! A memory cgroup around a staging, as Garden puts one around every Cloud Foundry container:
//! past its limit the kernel's out-of-memory killer sends SIGKILL, which is what a solve that
//! outgrows the staging quota meets on a foundation.

use std::fs;
use std::path::{Path, PathBuf};

/// A child cgroup of this process's memory cgroup (v1 `memory.limit_in_bytes`, or v2
/// `memory.max`), removed when dropped.
pub(crate) struct MemoryCgroup {
    dir: PathBuf,
}

impl MemoryCgroup {
    /// `None` (after saying why on stderr) where this machine lets no cgroup be made.
    pub(crate) fn create(mebibytes: u64) -> Option<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let bytes = (mebibytes * 1024 * 1024).to_string();
        let unique = format!(
            "conda-bp-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let v1 = own
            .lines()
            .find_map(|line| {
                line.split_once(":memory:")
                    .map(|(_, path)| path.to_string())
            })
            .map(|path| Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/')));
        let v2 = own
            .lines()
            .find_map(|line| line.strip_prefix("0::").map(str::to_string))
            .map(|path| Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/')));
        for (parent, limit_files) in [
            (
                v1,
                &["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"][..],
            ),
            (v2, &["memory.max", "memory.swap.max"][..]),
        ] {
            let Some(parent) = parent.filter(|parent| parent.join(limit_files[0]).exists()) else {
                continue;
            };
            let dir = parent.join(&unique);
            if fs::create_dir(&dir).is_err() {
                continue;
            }
            let cgroup = Self { dir };
            if fs::write(cgroup.dir.join(limit_files[0]), &bytes).is_err() {
                continue;
            }
            // No swap to escape into, where the kernel accounts it (v2 wants 0, v1 the same cap).
            let swap = if limit_files[1] == "memory.swap.max" {
                "0"
            } else {
                bytes.as_str()
            };
            let _ = fs::write(cgroup.dir.join(limit_files[1]), swap);
            return Some(cgroup);
        }
        eprintln!(
            "skipped: this machine lets no memory cgroup be made (needed to cap a staging's memory as Cloud Foundry does)"
        );
        None
    }

    /// The file a process writes its pid into to join.
    pub(crate) fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Every process in it has exited by now; the kernel may need a moment to let go.
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
