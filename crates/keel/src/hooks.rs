//! OCI hooks: each runs with the container state JSON on stdin, its own
//! `args` (args[0] is argv[0]) and `env`, and an optional `timeout` in
//! seconds. A hook that fails or times out fails the operation (the caller
//! decides: poststart/poststop failures are only logged, as the spec says).

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

/// Errors running a hook.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the hook could not be started
    #[error("{kind} hook {}: cannot run", path.display())]
    Spawn {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// the hook exited unsuccessfully
    #[error("{kind} hook {} failed: {status}{output}", path.display())]
    Failed {
        kind: &'static str,
        path: PathBuf,
        status: String,
        output: String,
    },
    /// the hook ran longer than its timeout
    #[error("{kind} hook {} timed out after {secs}s", path.display())]
    Timeout {
        kind: &'static str,
        path: PathBuf,
        secs: i64,
    },
}

/// The runtime-spec state object, as hooks receive it on stdin.
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &Path,
    annotations: &HashMap<String, String>,
) -> Vec<u8> {
    let mut v = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION_MAX,
        "id": id,
        "status": status,
        "bundle": bundle,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    if !annotations.is_empty() {
        v["annotations"] = serde_json::json!(annotations);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Run `hooks` in order; the first failure stops the list.
pub fn run_all(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &[u8]) -> Result<(), Error> {
    for h in hooks.into_iter().flatten() {
        run(kind, h, state)?;
    }
    Ok(())
}

/// Run one hook.
pub fn run(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), Error> {
    let path = hook.path().clone();
    let spawn_err = |source| Error::Spawn {
        kind,
        path: path.clone(),
        source,
    };
    let out = output_file().map_err(spawn_err)?;
    let mut cmd = Command::new(&path);
    let args = hook.args().as_deref().unwrap_or_default();
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or_default() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(out.try_clone().map_err(spawn_err)?)
        .stderr(out.try_clone().map_err(spawn_err)?);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: EPIPE is not an error.
        let _ = stdin.write_all(state);
    }
    let status = match hook.timeout().filter(|&t| t > 0) {
        None => child.wait().map_err(spawn_err)?,
        Some(secs) => match wait_timeout(&mut child, secs).map_err(spawn_err)? {
            Some(s) => s,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout { kind, path, secs });
            }
        },
    };
    if status.success() {
        return Ok(());
    }
    Err(Error::Failed {
        kind,
        path,
        status: status.to_string(),
        output: read_output(out),
    })
}

/// A memfd for the hook's stdout and stderr (no pipe, no reader thread).
fn output_file() -> std::io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create("keel-hook", rustix::fs::MemfdFlags::CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

fn read_output(mut f: std::fs::File) -> String {
    let mut s = String::new();
    let _ = f.rewind();
    let _ = (&mut f).take(4096).read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {}", s.replace('\n', " "))
    }
}

fn wait_timeout(
    child: &mut std::process::Child,
    secs: i64,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let pid = rustix::process::Pid::from_raw(child.id() as i32)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs as u64);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(None),
            Ok(_) => return child.wait().map(Some),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hook_gets_state_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}; echo \" $FOO\" >> {}", out.display(), out.display())],
            "env": ["FOO=bar"]
        }));
        let state = state_json("c1", "creating", 7, Path::new("/b"), &HashMap::new());
        run("prestart", &h, &state).unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.contains("\"id\":\"c1\""), "{got}");
        assert!(got.trim_end().ends_with(" bar"), "{got}");
    }

    #[test]
    fn failing_hook_reports_status_and_output() {
        let h = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}),
        );
        let e = run("createRuntime", &h, b"{}").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("createRuntime hook /bin/sh failed"), "{msg}");
        assert!(msg.contains("nope"), "{msg}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let t = std::time::Instant::now();
        let e = run("poststop", &h, b"{}").unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(4));
    }
}
