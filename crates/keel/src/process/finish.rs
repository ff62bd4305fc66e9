//! The last steps shared by a container's init and an `exec`ed process:
//! find the executable, close every fd the container must not see, enter
//! the working directory (and prove it is inside the container), and execve.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::Path;

use oci_spec::runtime::Process;

use super::sync::{Channel, ChildError, Msg};
use super::Error;

/// Default PATH when the process environment has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// argv, envp and the resolved program, built before the point of no return.
pub struct Exe {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

fn cstr(s: &str, what: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::Step {
        what: format!("{what} {s:?} contains a NUL byte"),
        source: std::io::Error::from_raw_os_error(libc::EINVAL),
    })
}

impl Exe {
    /// Resolve `process.args[0]` against the process's PATH (in the
    /// container's filesystem, so after pivot or setns).
    pub fn resolve(process: &Process) -> Result<Self, Error> {
        let args = process.args().as_deref().unwrap_or_default();
        let env = process.env().as_deref().unwrap_or_default();
        let arg0 = args.first().map(String::as_str).unwrap_or_default();
        let path = if arg0.contains('/') {
            check_executable(arg0).map_err(|source| Error::Exec {
                name: arg0.to_owned(),
                source,
            })?;
            arg0.to_owned()
        } else {
            let search = env
                .iter()
                .find_map(|e| e.strip_prefix("PATH="))
                .unwrap_or(DEFAULT_PATH);
            search
                .split(':')
                .map(|d| if d.is_empty() { "." } else { d })
                .map(|d| format!("{d}/{arg0}"))
                .find(|p| check_executable(p).is_ok())
                .ok_or_else(|| Error::NotInPath(arg0.to_owned()))?
        };
        Ok(Self {
            path: cstr(&path, "process.args[0]")?,
            argv: args
                .iter()
                .map(|a| cstr(a, "process.args"))
                .collect::<Result<_, _>>()?,
            envp: env
                .iter()
                .map(|e| cstr(e, "process.env"))
                .collect::<Result<_, _>>()?,
        })
    }

    /// execve; returns only on failure.
    pub fn exec(&self) -> Error {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // SAFETY: every pointer comes from a CString that outlives the call,
        // and both arrays are NULL-terminated.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        Error::Exec {
            name: self.path.to_string_lossy().into_owned(),
            source: std::io::Error::last_os_error(),
        }
    }
}

fn check_executable(path: &str) -> std::io::Result<()> {
    let st = std::fs::metadata(path)?;
    if !st.is_file() {
        return Err(std::io::Error::from_raw_os_error(libc::EACCES));
    }
    rustix::fs::access(path, rustix::fs::Access::EXEC_OK)?;
    Ok(())
}

/// Close every fd except stdio, `3..3+preserve` and `keep`.
pub fn close_fds(preserve: u32, keep: &[RawFd]) -> Result<(), Error> {
    let mut all: Vec<RawFd> = keep.to_vec();
    all.extend((0..preserve as RawFd).map(|i| 3 + i));
    super::fds::close_all_except(&all).map_err(|source| Error::Step {
        what: "closing inherited file descriptors".into(),
        source,
    })
}

/// chdir(process.cwd) and check the result lies inside our root: a cwd such
/// as `/proc/self/fd/N` naming a leaked host directory is refused
/// (CVE-2024-21626 class).
pub fn enter_cwd(process: &Process) -> Result<(), Error> {
    let cwd = process.cwd();
    let cwd = if cwd.as_os_str().is_empty() {
        Path::new("/")
    } else {
        cwd.as_path()
    };
    rustix::process::chdir(cwd).map_err(|e| Error::Step {
        what: format!("chdir to process.cwd {}", cwd.display()),
        source: e.into(),
    })?;
    let here = rustix::process::getcwd(Vec::new()).map_err(|e| Error::Step {
        what: format!(
            "process.cwd {} is not reachable from the container root",
            cwd.display()
        ),
        source: e.into(),
    })?;
    if !here.as_bytes().starts_with(b"/") {
        return Err(Error::Step {
            what: format!("process.cwd {} is outside the container", cwd.display()),
            source: std::io::Error::from_raw_os_error(libc::EPERM),
        });
    }
    Ok(())
}

/// Signals blocked by a foreground parent are unblocked in the child.
pub fn unblock_signals() {
    // SAFETY: sigset manipulation on a local, zero-initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Undumpable while keel's own image runs inside the container: other
/// container processes cannot open `/proc/<pid>/exe` (the host binary) or
/// `/proc/<pid>/mem` of this process (CVE-2019-5736 class). execve of the
/// container's program makes the process dumpable again.
pub fn set_undumpable() -> Result<(), Error> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable).map_err(
        |e| Error::Step {
            what: "PR_SET_DUMPABLE".into(),
            source: e.into(),
        },
    )
}

/// Die with the parent until the container is set up.
pub fn die_with_parent(on: bool) {
    let sig = if on {
        rustix::process::Signal::KILL.into()
    } else {
        None
    };
    let _ = rustix::process::set_parent_process_death_signal(sig);
}

/// Send `err` to the parent (or print it when the parent is gone) and exit 1.
/// A failure that is only the parent hanging up is not printed: the parent
/// has reported its own error (or was killed), and the caller's one-line
/// error stays one line.
pub fn report_and_exit(chan: &Channel, who: &str, err: &Error) -> ! {
    let report = ChildError::from_error(err);
    if chan.send(&Msg::Failed(report.clone()), None).is_err() && !parent_hung_up(err) {
        eprintln!("keel {who}: {}", report.message);
    }
    exit_code_failure()
}

/// Whether `err` comes from the channel closing under us (`Channel::expect`).
fn parent_hung_up(err: &Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Exit the child after a reported failure.
pub fn exit_code_failure() -> ! {
    super::spawn::exit_now(1)
}
