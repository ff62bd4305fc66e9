//! The `bpf(2)` calls for the v2 device filter: load, query, attach, detach.
//! Raw `SYS_bpf` with a zeroed `union bpf_attr` filled at the kernel's offsets.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::ebpf::{to_bytes, Insn};
use crate::error::{Error, Result};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr`, zeroed; big enough for every field the kernel may write
/// back for the commands we use.
#[repr(C, align(8))]
struct Attr([u8; 144]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 144])
    }
    fn put_u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn put_u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<i64> {
    // SAFETY: `attr` is a live, writable, zero-initialised buffer of exactly
    // the size passed (the kernel reads and writes back at most that much);
    // every pointer stored in it (instructions, license, log, id array)
    // refers to memory the caller keeps alive across this call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i64)
    }
}

/// A `bpf(2)` command that returns a new descriptor (PROG_LOAD,
/// PROG_GET_FD_BY_ID), owned from here on.
fn bpf_fd(cmd: libc::c_long, attr: &mut Attr) -> io::Result<OwnedFd> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf returned an invalid fd"))?;
    // SAFETY: for these commands a non-negative return is a descriptor the
    // kernel just opened for us; nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bpf_err(what: &'static str, dir: &Path, log: String, source: io::Error) -> Error {
    Error::Bpf {
        what,
        path: dir.to_path_buf(),
        log,
        source,
    }
}

/// Load the program; on failure reload with the verifier log for the error.
fn load(dir: &Path, prog: &[Insn]) -> Result<OwnedFd> {
    let bytes = to_bytes(prog);
    let license = c"Apache-2.0";
    let attempt = |log: Option<&mut Vec<u8>>| {
        let mut a = Attr::new();
        a.put_u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .put_u32(4, prog.len() as u32)
            .put_u64(8, bytes.as_ptr() as u64)
            .put_u64(16, license.as_ptr() as u64)
            .put_u32(68, BPF_CGROUP_DEVICE);
        if let Some(buf) = log {
            a.put_u32(24, 1)
                .put_u32(28, buf.len() as u32)
                .put_u64(32, buf.as_mut_ptr() as u64);
        }
        // prog_name (offset 48, 16 bytes): "berth_devices"
        let name = b"berth_devices";
        a.0[48..48 + name.len()].copy_from_slice(name);
        bpf_fd(BPF_PROG_LOAD, &mut a)
    };
    match attempt(None) {
        Ok(fd) => Ok(fd),
        Err(first) => {
            let mut buf = vec![0u8; 64 * 1024];
            // Only for the verifier log: the first error is the one we report
            // (a retry that somehow loads closes its fd on drop).
            let _ = attempt(Some(&mut buf));
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let log = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
            let log = if log.is_empty() {
                log
            } else {
                format!(": {log}")
            };
            Err(bpf_err("load", dir, log, first))
        }
    }
}

/// Ids of the device programs attached to `cgroup`.
fn query(cgroup: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut a = Attr::new();
    a.put_u32(0, cgroup.as_raw_fd() as u32)
        .put_u32(4, BPF_CGROUP_DEVICE)
        .put_u64(16, ids.as_mut_ptr() as u64)
        .put_u32(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut a)?;
    let n = (a.get_u32(24) as usize).min(ids.len());
    ids.truncate(n);
    Ok(ids)
}

fn attach_or_detach(
    cmd: libc::c_long,
    cgroup: &OwnedFd,
    prog: &OwnedFd,
    flags: u32,
) -> io::Result<()> {
    let mut a = Attr::new();
    a.put_u32(0, cgroup.as_raw_fd() as u32)
        .put_u32(4, prog.as_raw_fd() as u32)
        .put_u32(8, BPF_CGROUP_DEVICE)
        .put_u32(12, flags);
    bpf(cmd, &mut a).map(|_| ())
}

fn prog_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.put_u32(0, id);
    bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut a)
}

/// Open a cgroup directory as an O_DIRECTORY fd.
pub(crate) fn open_dir(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        dir,
        rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::Io {
        what: "open cgroup directory",
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

/// Load `prog`, attach it to `dir` (multi-attach, so there is no moment
/// without a filter), then detach the programs that were there before.
pub(crate) fn replace_device_program(dir: &Path, prog: &[Insn]) -> Result<()> {
    let cgroup = open_dir(dir)?;
    let new = load(dir, prog)?;
    let old = query(&cgroup).map_err(|e| bpf_err("query", dir, String::new(), e))?;
    attach_or_detach(BPF_PROG_ATTACH, &cgroup, &new, BPF_F_ALLOW_MULTI)
        .map_err(|e| bpf_err("attach", dir, String::new(), e))?;
    for id in old {
        let old_fd =
            prog_by_id(id).map_err(|e| bpf_err("lookup of an old copy", dir, String::new(), e))?;
        attach_or_detach(BPF_PROG_DETACH, &cgroup, &old_fd, 0)
            .map_err(|e| bpf_err("detach of an old copy", dir, String::new(), e))?;
    }
    Ok(())
}

/// How many device programs are attached to `dir` (for tests and checks).
pub fn attached_count(dir: &Path) -> Result<usize> {
    let cgroup = open_dir(dir)?;
    query(&cgroup)
        .map(|v| v.len())
        .map_err(|e| bpf_err("query", dir, String::new(), e))
}
