//! Image references (`[registry/]repository[:tag][@digest]`), parsed and
//! normalised exactly as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::Digest;

/// The registry Docker assumes when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_NAMESPACE: &str = "library/";
/// The tag Docker adds when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the length of the normalised name (registry/repository).
pub const NAME_MAX: usize = 255;
/// Docker's limit on the length of a tag.
pub const TAG_MAX: usize = 128;

/// A reference that is not a valid image name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// empty string
    #[error("invalid reference format: the reference is empty")]
    Empty,
    /// a 64-hex-digit string is an image id, not a name
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// uppercase letters in the repository path
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// the registry part is not a host name, IP address or host:port
    #[error("invalid reference format: {0:?} is not a valid registry host[:port]")]
    Registry(String),
    /// a path component breaks Docker's grammar
    #[error(
        "invalid reference format: repository path component {0:?} must be lowercase letters, \
         digits and single separators (., _, __, -) between them"
    )]
    Component(String),
    /// the normalised name is too long
    #[error(
        "invalid reference format: repository name {0:?} must not be more than 255 characters"
    )]
    NameTooLong(String),
    /// the tag breaks Docker's grammar
    #[error(
        "invalid reference format: tag {0:?} must be 1 to 128 characters of letters, digits, \
         '_', '.' and '-', not starting with '.' or '-'"
    )]
    Tag(String),
    /// the digest is not algorithm:hex
    #[error("invalid reference format: bad digest")]
    Digest(#[source] crate::digest::Error),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// registry host[:port], e.g. `docker.io` or `127.0.0.1:5000`
    pub registry: String,
    /// repository path, e.g. `library/busybox`
    pub repository: String,
    /// tag, if any (`latest` is added only when there is no digest either)
    pub tag: Option<String>,
    /// digest, if any
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise a reference as `docker pull` does.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::Empty);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::HexName(s.to_owned()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>().map_err(Error::Digest)?)),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        let (registry, repository) = split_registry(name);
        check_registry(registry)?;
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::Uppercase(repository.to_owned()));
        }
        for component in repository.split('/') {
            check_component(component)?;
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("{OFFICIAL_NAMESPACE}{repository}")
        } else {
            repository.to_owned()
        };
        if registry.len() + 1 + repository.len() > NAME_MAX {
            return Err(Error::NameTooLong(format!("{registry}/{repository}")));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `busybox:latest`, `ns/app:1`,
    /// `127.0.0.1:5000/x:1`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The short name without tag or digest: `busybox`, `127.0.0.1:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_NAMESPACE) {
                Some(short) if !short.contains('/') => short.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            self.repository_name()
        }
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        Self {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest` (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// What a manifest request names: the digest if set, else the tag.
    pub fn manifest_key(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// Whether the registry is on this machine (`localhost`, 127.0.0.0/8,
    /// `::1`): Docker talks plain HTTP to those without configuration.
    pub fn is_loopback_registry(&self) -> bool {
        is_loopback_host(&self.registry)
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository_name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// The host part of `host[:port]` (brackets of an IPv6 literal removed).
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Whether `host[:port]` names this machine.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Docker's rule: the first path component is a registry only if it has a
/// `.` or `:`, is `localhost`, or has uppercase letters.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            let first = if first == "index.docker.io" {
                DEFAULT_REGISTRY
            } else {
                first
            };
            (first, rest)
        }
        _ => (DEFAULT_REGISTRY, name),
    }
}

fn check_registry(registry: &str) -> Result<(), Error> {
    let bad = || Error::Registry(registry.to_owned());
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        let port = match after {
            "" => None,
            a => Some(a.strip_prefix(':').ok_or_else(bad)?),
        };
        (None, port)
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    Ok(())
}

/// `[a-z0-9]+` joined by one `.`, one `_`, `__` or any number of `-`.
fn check_component(c: &str) -> Result<(), Error> {
    let bad = || Error::Component(c.to_owned());
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad());
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<(), Error> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !tag.is_empty()
        && tag.len() <= TAG_MAX
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Tag(tag.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn accepted_forms_normalise_as_docker_does() {
        let e3 = format!("busybox@{D}");
        let tagged_digest = format!("127.0.0.1:5000/x:1@{D}");
        let table: &[(&str, &str, &str)] = &[
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("ns/app:v2", "docker.io/ns/app:v2", "ns/app:v2"),
            (
                "docker.io/ns/sub/app",
                "docker.io/ns/sub/app:latest",
                "ns/sub/app:latest",
            ),
            (
                "127.0.0.1:5000/x:1",
                "127.0.0.1:5000/x:1",
                "127.0.0.1:5000/x:1",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "localhost:5000/a/b",
                "localhost:5000/a/b:latest",
                "localhost:5000/a/b:latest",
            ),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
            (
                "quay.io/coreos/etcd",
                "quay.io/coreos/etcd:latest",
                "quay.io/coreos/etcd:latest",
            ),
            ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
            ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            (
                "a/b-c__d---e/f_g.h",
                "docker.io/a/b-c__d---e/f_g.h:latest",
                "a/b-c__d---e/f_g.h:latest",
            ),
            ("x:_Tag.1-2", "docker.io/library/x:_Tag.1-2", "x:_Tag.1-2"),
        ];
        for (input, full, familiar) in table {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }
        let r = Reference::parse(&e3).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().map(|d| d.as_str()), Some(D));
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.manifest_key(), D);
        let r = Reference::parse(&tagged_digest).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "x");
        assert_eq!(r.repository_name(), "127.0.0.1:5000/x");
        assert_eq!(r.to_string(), tagged_digest);
    }

    #[test]
    fn rejected_forms_say_why() {
        let long_component = "a".repeat(250);
        let long_tag = format!("x:{}", "t".repeat(129));
        let hex = "a".repeat(64);
        let table: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("Busybox", "must be lowercase"),
            ("docker.io/Library/busybox", "must be lowercase"),
            ("busybox:", "tag"),
            ("busybox:-x", "tag"),
            (&long_tag, "tag"),
            ("busybox@sha256:abc", "digest"),
            ("busybox@md5:abc", "digest"),
            ("a//b", "component"),
            ("-a", "component"),
            ("a-", "component"),
            ("a..b", "component"),
            ("a___b", "component"),
            ("a/b/", "component"),
            ("ex ample", "component"),
            ("a.b_c/x", "registry"),
            (":tag", "component"),
            ("my_host.com:x/a", "registry"),
            ("-bad.com/a", "registry"),
            ("[zz]:5000/a", "registry"),
            (&long_component, "255"),
            (&hex, "64-byte"),
        ];
        for (input, needle) in table {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn with_tag_and_digest_replace_each_other() {
        let r = Reference::parse("busybox").unwrap();
        let d: Digest = D.parse().unwrap();
        let pinned = r.with_digest(d.clone());
        assert_eq!(pinned.familiar(), format!("busybox@{D}"));
        assert_eq!(pinned.with_tag("1").familiar(), "busybox:1");
        assert_eq!(pinned.familiar_name(), "busybox");
    }

    #[test]
    fn loopback_registries() {
        for (input, loopback) in [
            ("localhost/x", true),
            ("localhost:5000/x", true),
            ("127.0.0.1:5000/x", true),
            ("127.8.9.10/x", true),
            ("[::1]:5000/x", true),
            ("10.0.0.1:5000/x", false),
            ("busybox", false),
            ("example.com/x", false),
        ] {
            assert_eq!(
                Reference::parse(input).unwrap().is_loopback_registry(),
                loopback,
                "{input}"
            );
        }
    }
}
