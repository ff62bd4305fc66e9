//! Host mounts for tests, removed on drop, and mountinfo reading.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount on the host, lazily unmounted on drop (even when the test fails).
pub struct HostMount(PathBuf);

impl HostMount {
    /// `mount -t tmpfs -o size=1m` at `at` (created).
    pub fn tmpfs(at: &Path) -> Self {
        std::fs::create_dir_all(at).expect("create the mount point");
        run_mount(&["-t", "tmpfs", "-o", "size=1m", "berth-test"], at);
        Self(at.to_path_buf())
    }

    /// Bind `at` onto itself and make it a shared mount.
    pub fn shared_bind(at: &Path) -> Self {
        run_mount(&["--bind", &at.to_string_lossy()], at);
        let guard = Self(at.to_path_buf());
        run_mount(&["--make-shared"], at);
        guard
    }
}

fn run_mount(args: &[&str], at: &Path) {
    let ok = Command::new("mount")
        .args(args)
        .arg(at)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "mount {args:?} {} failed", at.display());
}

impl Drop for HostMount {
    fn drop(&mut self) {
        if let Ok(path) = CString::new(self.0.as_os_str().as_bytes()) {
            // SAFETY: a valid NUL-terminated path; MNT_DETACH never blocks.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// The mount point (5th field) of a mountinfo line.
pub fn mount_point(line: &str) -> Option<&str> {
    line.split(' ').nth(4)
}

/// The last (topmost) mountinfo line whose mount point is `at`.
pub fn mountinfo_line<'a>(mountinfo: &'a str, at: &str) -> Option<&'a str> {
    mountinfo.lines().rfind(|l| mount_point(l) == Some(at))
}

/// This process's mountinfo.
pub fn own_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo")
}

/// The host's mount table without the mounts under the temp dir (tests
/// running in parallel make and remove those).
pub fn host_mountinfo_outside_tmp() -> String {
    let tmp = std::env::temp_dir();
    let tmp = tmp.to_string_lossy();
    own_mountinfo()
        .lines()
        .filter(|l| !mount_point(l).is_some_and(|at| at.starts_with(&*tmp)))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether any host mount point is `path` or below it.
pub fn host_mounts_under(path: &Path) -> bool {
    let p = path.to_string_lossy();
    own_mountinfo()
        .lines()
        .any(|l| mount_point(l).is_some_and(|at| at.starts_with(&*p)))
}
