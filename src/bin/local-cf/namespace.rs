//! Linux namespaces for the local lifecycle, and the only unsafe code in it.
//!
//! Both helpers install a `pre_exec` hook: it runs in the forked child, before `exec`, where
//! only async-signal-safe work is allowed. The hooks therefore make raw syscalls on data
//! prepared before the fork (static C strings, stack structs) and allocate nothing.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The app's home at run time in a Cloud Foundry container.
pub(crate) const HOME_VCAP: &str = "/home/vcap";

/// A new network namespace starts with `lo` down: without this, even 127.0.0.1 servers a
/// buildpack starts for itself would be unreachable, which no CF container does to it.
fn bring_loopback_up() -> io::Result<()> {
    // SAFETY: plain syscall; the descriptor is closed below on every path.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if socket < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = libc::c_char::from_ne_bytes([*byte]);
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `ifreq.ifr_ifru.ifru_flags` of the
    // request, which lives on this stack frame for the duration of both calls.
    let result = unsafe {
        if libc::ioctl(socket, libc::SIOCGIFFLAGS, &raw mut request) < 0 {
            Err(io::Error::last_os_error())
        } else {
            request.ifr_ifru.ifru_flags |= IFF_UP;
            if libc::ioctl(socket, libc::SIOCSIFFLAGS, &raw const request) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(socket) };
    result
}

/// `libc::IFF_UP` is a `c_int` while `ifru_flags` is a `c_short`; the flag is bit 0.
const IFF_UP: libc::c_short = 0x1;

/// Runs the command in a private mount namespace where `/home/vcap` is a fresh, empty tmpfs.
/// The app then finds its files at the very paths it has on Cloud Foundry, while the host's
/// `/home/vcap` (if any) is hidden and untouched, and the tmpfs vanishes with the last
/// process of the namespace. The mount point must exist before the command is spawned.
pub(crate) fn private_home_vcap_on_exec(command: &mut Command) {
    // SAFETY: the hook only calls `unshare` and `mount` with static C strings.
    unsafe {
        command.pre_exec(enter_private_home_vcap);
    }
}

fn enter_private_home_vcap() -> io::Result<()> {
    // SAFETY: plain syscalls; every pointer is a static NUL-terminated string or null,
    // which `mount(2)` accepts for the arguments it ignores.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::last_os_error());
        }
        // Without this, systemd's shared `/` would propagate our tmpfs back to the host.
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        if libc::mount(
            c"tmpfs".as_ptr(),
            c"/home/vcap".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0755".as_ptr().cast(),
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether `/home/vcap` is, for this process, a tmpfs mounted in a namespace of its own:
/// the topmost (last listed) mount on that path in `/proc/self/mountinfo` is a tmpfs, and the mount
/// namespace differs from the one of PID 1 (the host's, or the container's).
pub(crate) fn home_vcap_is_private_tmpfs() -> bool {
    let own = std::fs::read_link("/proc/self/ns/mnt");
    let init = std::fs::read_link("/proc/1/ns/mnt");
    if let (Ok(own), Ok(init)) = (&own, &init) {
        if own == init {
            return false;
        }
    }
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo
        .lines()
        .rev()
        .find_map(|line| {
            // "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
            let (before, after) = line.split_once(" - ")?;
            let mount_point = before.split(' ').nth(4)?;
            let fs_type = after.split(' ').next()?;
            (mount_point == HOME_VCAP).then_some(fs_type == "tmpfs")
        })
        .unwrap_or(false)
}

/// The staging user Diego runs the builder as.
pub(crate) const VCAP_UID: u32 = 2000;

/// What the staging container is made of, prepared before the fork (the hook may not
/// allocate): the host directories that become its `/tmp` and `/home/vcap`, whether it gets
/// a network of its own, and whether the builder drops to `vcap`.
pub(crate) struct ContainerSpec {
    pub(crate) tmp: std::ffi::CString,
    pub(crate) home: std::ffi::CString,
    pub(crate) isolate_network: bool,
    pub(crate) as_vcap: bool,
}

/// Runs the command as Diego runs the builder: in a private mount namespace where the staging
/// root's directories are mounted at `/tmp` and `/home/vcap`, with the working directory
/// `/home/vcap`, a 022 umask and, unless asked for root, as the unprivileged `vcap`. Both
/// mount points must exist on the host (they always do: `/tmp`; `/home/vcap` is made).
pub(crate) fn enter_container_on_exec(command: &mut Command, spec: ContainerSpec) {
    // SAFETY: the hook only makes syscalls (`unshare`, `mount`, `socket`, `ioctl`, `close`,
    // `setgroups`, `setgid`, `setuid`, `umask`, `chdir`) on data prepared before the fork.
    unsafe {
        command.pre_exec(move || enter_container(&spec));
    }
}

fn enter_container(spec: &ContainerSpec) -> io::Result<()> {
    let check = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let flags = if spec.isolate_network {
        libc::CLONE_NEWNS | libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNS
    };
    // SAFETY: plain syscalls; every pointer is a NUL-terminated string that outlives the call,
    // or null where `mount(2)` ignores the argument.
    unsafe {
        check(libc::unshare(flags))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        // `/home/vcap` first: the staging root usually lives under `/tmp`, which the second
        // mount hides.
        check(libc::mount(
            spec.home.as_ptr(),
            c"/home/vcap".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            spec.tmp.as_ptr(),
            c"/tmp".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        ))?;
    }
    if spec.isolate_network {
        bring_loopback_up()?;
    }
    // SAFETY: plain syscalls with constant or static arguments.
    unsafe {
        if spec.as_vcap {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(VCAP_UID))?;
            check(libc::setuid(VCAP_UID))?;
        }
        libc::umask(0o022);
        check(libc::chdir(c"/home/vcap".as_ptr()))?;
    }
    Ok(())
}

/// Drops to `vcap` in the forked child before `exec`, for the app a launcher starts.
pub(crate) fn become_vcap_on_exec(command: &mut Command) {
    // SAFETY: the hook only calls `setgroups`, `setgid` and `setuid` with constants.
    unsafe {
        command.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(VCAP_UID) != 0
                || libc::setuid(VCAP_UID) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
