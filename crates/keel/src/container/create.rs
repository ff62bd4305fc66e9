//! `create` (and the first half of `run`): state dir, cgroup, the one clone,
//! the parent's side of the init protocol.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_cgroups::Manager;
use oci_spec::runtime::Spec;

use super::{Context, Error};
use crate::process::init::{self, Gate, InitConfig};
use crate::process::namespaces;
use crate::process::spawn::{self, Forked};
use crate::process::sync::{Channel, Msg};
use crate::state::{ContainerDir, Phase, State, SCHEMA_VERSION};
use crate::{console, hooks, log, security, spec};

/// `create` flags.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// A container whose init is set up and waits for start.
pub(super) struct Launched {
    pub dir: ContainerDir,
    pub state: State,
    /// pins init while this command runs
    pub _pidfd: OwnedFd,
    pub chan: Channel,
    /// the pty master when a foreground run proxies the terminal
    pub console: Option<OwnedFd>,
    guard: Cleanup,
}

impl Launched {
    /// The container is ours to keep: no cleanup on drop.
    pub fn keep(&mut self) {
        self.guard.armed = false;
    }
}

/// `keel create`: the container waits in "created" for `start`.
pub fn create(ctx: &Context, id: &str, opts: &CreateOptions) -> Result<(), Error> {
    let mut l = launch(ctx, id, opts, Mode::Create)?;
    l.keep();
    Ok(())
}

/// How the container will be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// `create`: init blocks on exec.fifo
    Create,
    /// `run -d`: Start message, no pty proxy
    Detached,
    /// `run`: Start message, we may proxy the pty
    Foreground,
}

pub(super) fn launch(
    ctx: &Context,
    id: &str,
    opts: &CreateOptions,
    mode: Mode,
) -> Result<Launched, Error> {
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(Error::io(format!("bundle {}", opts.bundle.display())))?;
    let spec = spec::load(&bundle)?;
    let rootfs = resolve_rootfs(&spec, &bundle)?;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| Error::Invalid("config.json: process is required".into()))?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && mode != Mode::Foreground {
        return Err(Error::Invalid(
            "process.terminal is true: a detached container needs --console-socket".into(),
        ));
    }
    // Bad process values fail here, before any namespace, mount or cgroup.
    security::validate(&process, &spec)?;
    let dir = ctx.root.create(id)?;
    let mut guard = Cleanup::new(dir.path().to_owned());
    let rdt = resctrl_group(&spec, id)?;
    guard.rdt = rdt.clone();
    let annotations: HashMap<String, String> = spec.annotations().clone().unwrap_or_default();
    let linux = spec.linux().as_ref();
    let cgroups_path = linux
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned());
    let manager = Manager::with_options(
        cgroups_path.as_deref(),
        id,
        berth_cgroups::Options {
            systemd: ctx.systemd_cgroup,
        },
    )?;
    let resources = effective_resources(&spec);
    let mut state = State {
        version: SCHEMA_VERSION,
        id: id.to_owned(),
        pid: 0,
        pid_start: 0,
        phase: Phase::Creating,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: log::rfc3339_now(),
        owner: String::new(),
        annotations,
        cgroup: Some(manager.clone()),
        rdt,
        spec: with_resources(&spec, &resources),
    };
    // Written before anything exists, so `delete --force` can clean up
    // after a create killed at any later point.
    dir.write(&state)?;
    log::debug(|| "state written".into());
    manager.create()?;
    log::debug(|| "cgroup created".into());
    guard.manager = Some(manager.clone());
    // Always applied, so the default-deny device rules are installed too.
    manager.apply(&resources)?;
    log::debug(|| "resources applied".into());
    let plan = namespaces::plan(&spec)?;
    let seccomp = ctx.seccomp(&spec)?;
    let fifo = match mode {
        Mode::Create => Some(make_fifo(&dir)?),
        _ => None,
    };
    let (parent, child) = Channel::pair().map_err(Error::io("socketpair"))?;
    let cgroup_fd = manager.open_v2_dir()?;
    if mode == Mode::Foreground {
        super::supervise::block_signals();
    }
    // Idmapped bind mounts need the host's user namespace: built here,
    // attached by init (see rootfs::premount_idmapped).
    let _premounted = crate::rootfs::premount_idmapped(&spec, &bundle)?;
    let restore = plan.enter_parent(&spec)?;
    let close_now = [dir.lock_fd(), parent.fd()];
    let cfg = InitConfig {
        id,
        spec: &spec,
        process: &process,
        bundle: &bundle,
        rootfs: &rootfs,
        annotations: &state.annotations,
        namespaces: &plan,
        gate: match &fifo {
            Some(f) => Gate::Fifo(f.as_fd()),
            None => Gate::Message,
        },
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        seccomp: seccomp.as_ref(),
        close_now: &close_now,
    };
    // SAFETY: keel is single-threaded; the child runs init::run, which ends
    // in execve or _exit.
    let forked = unsafe { spawn::clone(plan.clone_flags, cgroup_fd.as_ref().map(|f| f.as_fd())) };
    let (mut pid, mut pidfd, in_cgroup) = match forked {
        Ok(Forked::Child) => init::run(&cfg, &child),
        Ok(Forked::Parent {
            pid,
            pidfd,
            in_cgroup,
        }) => (pid, pidfd, in_cgroup),
        Err(e) => {
            if let Some(r) = restore {
                let _ = r.undo();
            }
            return Err(Error::io("clone")(e));
        }
    };
    drop(child);
    log::debug(|| "cloned".into());
    guard.pid = pid;
    if let Some(r) = restore {
        r.undo()?;
    }
    if plan.new_user && !plan.staged {
        write_id_maps(pid, &spec)?;
    }
    // On v1 the move into the cgroups can wait for an RCU grace period
    // (10-30 ms after a quiet spell): let init start mounting meanwhile,
    // unless it needs the cgroup first (cgroup namespace, staged path).
    let defer_join = !in_cgroup && !plan.staged && !plan.unshares_cgroup();
    if !in_cgroup && !defer_join {
        manager.add_pid(pid)?;
    }
    if !plan.staged {
        crate::process::netdev::move_all(&spec, pid)?;
    }
    parent
        .send(
            &Msg::Proceed {
                host_pid: pid,
                cgroup_pending: defer_join,
            },
            None,
        )
        .map_err(Error::io("sync with init"))?;
    if defer_join {
        manager.add_pid(pid)?;
        // A child that already failed has hung up: its Failed message is
        // read by serve_init below.
        let _ = parent.send(&Msg::Joined, None);
    }
    log::debug(|| "pid added to cgroup".into());
    if plan.staged {
        (pid, pidfd) = super::staged::serve(&parent, pid, pidfd, &spec, &mut guard.pid)?;
        crate::process::netdev::move_all(&spec, pid)?;
        log::debug(|| format!("staged namespaces ready, init is {pid}"));
        parent
            .send(
                &Msg::Proceed {
                    host_pid: pid,
                    cgroup_pending: false,
                },
                None,
            )
            .map_err(Error::io("sync with init"))?;
    }
    if let Some(g) = &state.rdt {
        crate::rdt::add(g, pid)?;
    }
    state.pid = pid;
    let console = serve_init(&parent, &state, &spec, opts.console_socket.as_deref())?;
    log::debug(|| "init ready".into());
    state.pid_start = crate::state::pid_start_time(pid).unwrap_or(0);
    if mode == Mode::Create {
        state.phase = Phase::Created;
        dir.write(&state)?;
    }
    if let Some(p) = &opts.pid_file {
        super::write_pid_file(p, pid)?;
    }
    Ok(Launched {
        dir,
        state,
        _pidfd: pidfd,
        chan: parent,
        console,
        guard,
    })
}

/// `linux.intelRdt`: find or make the resctrl group, before the process
/// exists (a missing resctrl or a conflicting group fails create here).
fn resctrl_group(spec: &Spec, id: &str) -> Result<Option<crate::rdt::Group>, Error> {
    let Some(rdt) = spec.linux().as_ref().and_then(|l| l.intel_rdt().as_ref()) else {
        return Ok(None);
    };
    let root = crate::rdt::mount_point().ok_or(crate::rdt::Error::NotMounted)?;
    Ok(Some(crate::rdt::setup(&root, rdt, id)?))
}

fn resolve_rootfs(spec: &Spec, bundle: &Path) -> Result<PathBuf, Error> {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let path = bundle.join(&root);
    std::fs::canonicalize(&path).map_err(Error::io(format!("root.path {}", path.display())))
}

fn make_fifo(dir: &ContainerDir) -> Result<OwnedFd, Error> {
    let path = dir.fifo();
    let what = || format!("cannot create {}", path.display());
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o622),
        0,
    )
    .map_err(Error::errno(what()))?;
    rustix::fs::chmod(&path, rustix::fs::Mode::from_raw_mode(0o622))
        .map_err(Error::errno(what()))?;
    rustix::fs::open(
        &path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(Error::errno(what()))
}

/// The parent writes the child's uid/gid maps (root needs no setgroups deny).
pub(super) fn write_id_maps(pid: i32, spec: &Spec) -> Result<(), Error> {
    let linux = spec.linux().as_ref();
    let fmt = |maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gid = fmt(linux.and_then(|l| l.gid_mappings().as_ref()));
    for (file, text) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text.as_bytes()).map_err(Error::io(format!(
            "cannot write {path} (linux.{}Mappings)",
            &file[..3]
        )))?;
    }
    Ok(())
}

/// The parent's side of init's setup: hooks, console, seccomp listener,
/// until Ready. Returns the pty master when no console socket took it.
fn serve_init(
    chan: &Channel,
    state: &State,
    spec: &Spec,
    console_socket: Option<&Path>,
) -> Result<Option<OwnedFd>, Error> {
    let mut console = None;
    loop {
        let (msg, fd) = match chan.recv().map_err(Error::io("sync with init"))? {
            Some(m) => m,
            None => return Err(Error::Invalid("container init exited during setup".into())),
        };
        match msg {
            Msg::RunHooks => {
                let body = super::hook_state(state, super::Status::Creating);
                let h = spec.hooks().as_ref();
                let r = hooks::run_all("prestart", h.and_then(|h| h.prestart().as_ref()), &body)
                    .and_then(|()| {
                        hooks::run_all(
                            "createRuntime",
                            h.and_then(|h| h.create_runtime().as_ref()),
                            &body,
                        )
                    });
                if let Err(e) = r {
                    let report = crate::process::sync::ChildError::from_error(&e);
                    let _ = chan.send(&Msg::Failed(report), None);
                    return Err(e.into());
                }
                chan.send(&Msg::HooksDone, None)
                    .map_err(Error::io("sync with init"))?;
            }
            Msg::Console => {
                let fd = fd.ok_or_else(|| Error::Invalid("init sent no pty".into()))?;
                match console_socket {
                    Some(sock) => console::send_master(sock, fd.as_fd())?,
                    None => console = Some(fd),
                }
            }
            Msg::SeccompNotify => send_notify(fd, state, spec)?,
            Msg::Ready => return Ok(console),
            Msg::Failed(e) => return Err(Error::Child(e)),
            other => {
                return Err(Error::Invalid(format!(
                    "unexpected message from init: {other:?}"
                )))
            }
        }
    }
}

pub(super) fn send_notify(fd: Option<OwnedFd>, state: &State, spec: &Spec) -> Result<(), Error> {
    let fd = fd.ok_or_else(|| Error::Invalid("no seccomp notify fd".into()))?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let Some(listener) = seccomp.and_then(|s| s.listener_path().as_ref()) else {
        return Ok(());
    };
    let st = super::state_object(state, super::Status::Creating);
    let msg = security::container_process_state(
        &st,
        state.pid,
        seccomp.and_then(|s| s.listener_metadata().as_deref()),
    );
    security::send_to_listener(listener, fd, &msg)?;
    Ok(())
}

/// Undo a failed create: kill init, remove the cgroup and the state dir.
struct Cleanup {
    armed: bool,
    dir: PathBuf,
    pid: i32,
    manager: Option<Manager>,
    rdt: Option<crate::rdt::Group>,
}

impl Cleanup {
    fn new(dir: PathBuf) -> Self {
        Self {
            armed: true,
            dir,
            pid: 0,
            manager: None,
            rdt: None,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.pid > 0 {
            // SAFETY: kill and waitpid on our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(m) = &self.manager {
            let _ = m.kill_all(libc::SIGKILL);
            super::delete::remove_cgroup(m);
        }
        if let Some(g) = &self.rdt {
            crate::rdt::remove(g);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `linux.resources` (empty when absent) plus allow rules for the device
/// nodes of `linux.devices`, which keel creates (as runc allows them).
fn effective_resources(spec: &Spec) -> oci_spec::runtime::LinuxResources {
    let linux = spec.linux().as_ref();
    let mut r = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let nodes = linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    if !nodes.is_empty() {
        let mut rules = r.devices().clone().unwrap_or_default();
        rules.extend(berth_cgroups::allow_rules_for(nodes));
        r.set_devices(Some(rules));
    }
    r
}

/// `spec` with `resources` as its `linux.resources`: what `state.json` keeps,
/// so `update` merges into what was really applied.
fn with_resources(spec: &Spec, resources: &oci_spec::runtime::LinuxResources) -> Spec {
    let mut s = spec.clone();
    if let Some(mut linux) = s.linux().clone() {
        linux.set_resources(Some(resources.clone()));
        s.set_linux(Some(linux));
    }
    s
}
