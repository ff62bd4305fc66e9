//! `linux.netDevices`: the parent moves host network devices into the
//! container's network namespace (and renames them) with one rtnetlink
//! `RTM_NEWLINK` request per device, after the clone and before init goes on.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};

/// The kernel's IFNAMSIZ, NUL included.
const IFNAMSIZ: usize = 16;
const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;

/// A `linux.netDevices` failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the spec asks for something that cannot work
    #[error("linux.netDevices: {0}")]
    Invalid(String),
    /// the named host device does not exist
    #[error("linux.netDevices: host device {0:?} not found")]
    NotFound(String),
    /// a netlink or /proc step failed
    #[error("linux.netDevices: {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The spec's devices (empty when absent).
fn devices(spec: &Spec) -> Option<&HashMap<String, LinuxNetDevice>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .filter(|d| !d.is_empty())
}

/// Check names, and that the container gets a new network namespace.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    let Some(devs) = devices(spec) else {
        return Ok(());
    };
    let new_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
        });
    if !new_netns {
        return Err(Error::Invalid(
            "needs a new network namespace in linux.namespaces".into(),
        ));
    }
    for (host, dev) in devs {
        check_name(host)?;
        if let Some(n) = dev.name() {
            check_name(n)?;
        }
    }
    Ok(())
}

fn check_name(n: &str) -> Result<(), Error> {
    if n.is_empty()
        || n.len() >= IFNAMSIZ
        || n == "."
        || n == ".."
        || n.contains(['/', ':', '\0'])
        || n.contains(char::is_whitespace)
    {
        return Err(Error::Invalid(format!(
            "{n:?} is not a valid interface name"
        )));
    }
    Ok(())
}

/// Move every device of the spec into `pid`'s network namespace.
pub fn move_all(spec: &Spec, pid: i32) -> Result<(), Error> {
    let Some(devs) = devices(spec) else {
        return Ok(());
    };
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = std::fs::File::open(&ns_path).map_err(|source| Error::Io {
        what: format!("open {ns_path}"),
        source,
    })?;
    let sock = open_socket()?;
    for (host, dev) in devs {
        let new_name = dev.name().as_deref().unwrap_or(host);
        move_one(&sock, host, new_name, netns.as_raw_fd())?;
    }
    Ok(())
}

fn move_one(sock: &OwnedFd, host: &str, new_name: &str, netns: i32) -> Result<(), Error> {
    let cname = std::ffi::CString::new(host).map_err(|_| Error::NotFound(host.to_owned()))?;
    // SAFETY: a valid NUL-terminated name; returns 0 when unknown.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(Error::NotFound(host.to_owned()));
    }
    let msg = newlink_request(index as i32, new_name, netns as u32);
    let what = || format!("move {host:?} into the container as {new_name:?}");
    // SAFETY: sending our own buffer on our own socket.
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(Error::Io {
            what: what(),
            source: std::io::Error::last_os_error(),
        });
    }
    read_ack(sock).map_err(|source| Error::Io {
        what: what(),
        source,
    })
}

fn open_socket() -> Result<OwnedFd, Error> {
    // SAFETY: plain socket creation; the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(Error::Io {
            what: "netlink socket".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// nlmsghdr + ifinfomsg + IFLA_NET_NS_FD + IFLA_IFNAME, native endian.
fn newlink_request(index: i32, name: &str, netns: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
                                              // ifinfomsg: family, pad, type, index, flags, change
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&index.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut m, IFLA_NET_NS_FD, &netns.to_ne_bytes());
    let mut cname = name.as_bytes().to_vec();
    cname.push(0);
    push_attr(&mut m, IFLA_IFNAME, &cname);
    let len = m.len() as u32;
    m[..4].copy_from_slice(&len.to_ne_bytes());
    m
}

fn push_attr(m: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = (4 + data.len()) as u16;
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&typ.to_ne_bytes());
    m.extend_from_slice(data);
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
}

/// Wait for the NLMSG_ERROR reply; error code 0 is the ack.
fn read_ack(sock: &OwnedFd) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: receiving into our own buffer of the given size.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        if n < 20 {
            return Err(std::io::Error::other("short netlink reply"));
        }
        let typ = u16::from_ne_bytes([buf[4], buf[5]]);
        if typ != NLMSG_ERROR {
            continue;
        }
        let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
        return match code {
            0 => Ok(()),
            c => Err(std::io::Error::from_raw_os_error(-c)),
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn request_layout() {
        let m = newlink_request(7, "eth7", 5);
        assert!(m.len().is_multiple_of(4));
        assert_eq!(
            u32::from_ne_bytes(m[..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(i32::from_ne_bytes(m[20..24].try_into().unwrap()), 7);
        // first attribute right after the 16-byte ifinfomsg
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), IFLA_NET_NS_FD);
        assert_eq!(&m[44..49], b"eth7\0");
    }

    #[test]
    fn needs_a_new_netns_and_good_names() {
        let base = |ns: serde_json::Value, name: &str| {
            spec(serde_json::json!({"ociVersion": "1.2.0",
                "linux": {"namespaces": ns, "netDevices": {"dummy0": {"name": name}}}}))
        };
        let e = validate(&base(serde_json::json!([{"type": "pid"}]), "eth0")).unwrap_err();
        assert!(e.to_string().contains("new network namespace"), "{e}");
        validate(&base(serde_json::json!([{"type": "network"}]), "eth0")).unwrap();
        let e = validate(&base(serde_json::json!([{"type": "network"}]), "a/b")).unwrap_err();
        assert!(e.to_string().contains("not a valid interface name"), "{e}");
    }
}
