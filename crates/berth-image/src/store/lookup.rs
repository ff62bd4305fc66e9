//! Finding images by name, digest and (short) id, with Docker's rules.

use super::{Error, ImageRecord};
use crate::pull;
use crate::{Digest, Reference};

/// The hex part of an id or id prefix (`sha256:ab12…`, `ab12…`), if it is one.
pub(super) fn id_hex(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    (!hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    .then_some(hex)
}

pub(super) fn by_id_prefix(all: &[ImageRecord], hex: &str) -> Result<Option<ImageRecord>, Error> {
    let mut found: Option<&ImageRecord> = None;
    for r in all.iter().filter(|r| r.id.encoded().starts_with(hex)) {
        match found {
            Some(f) if f.id != r.id => return Err(Error::Ambiguous(hex.to_owned())),
            Some(_) => {}
            None => found = Some(r),
        }
    }
    Ok(found.cloned())
}

pub(super) fn by_name(all: &[ImageRecord], r: &Reference) -> Option<ImageRecord> {
    let key = pull::record_name(r);
    if let Some(rec) = all.iter().find(|x| x.name == key) {
        return Some(rec.clone());
    }
    // `repo@digest` also finds a tagged record of that repo pulled by (or
    // resolving to) that digest.
    let d = r.digest.as_ref()?;
    let repo = r.repository_name();
    all.iter()
        .find(|x| {
            x.name.starts_with(&repo)
                && x.name[repo.len()..].starts_with([':', '@'])
                && (x.repo_digest.as_ref() == Some(d)
                    || pull::oci_digest(&x.target).ok().as_ref() == Some(d))
        })
        .cloned()
}

/// `busybox:latest` from `docker.io/library/busybox:latest`.
pub(super) fn familiar(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_owned())
}

pub(super) fn short_id(id: &Digest) -> String {
    id.encoded().chars().take(12).collect()
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::Descriptor;

    fn rec(name: &str, id: &[u8]) -> ImageRecord {
        let d = Digest::sha256_of(id);
        ImageRecord {
            name: name.to_owned(),
            target: Descriptor::new(
                oci_spec::image::MediaType::ImageManifest,
                1,
                pull::to_oci_digest(&d).unwrap(),
            ),
            repo_digest: None,
            id: d,
            created: 0,
        }
    }

    #[test]
    fn id_prefixes_follow_docker() {
        let all = vec![rec("a", b"1"), rec("b", b"2"), rec("c", b"1")];
        let id = Digest::sha256_of(b"1");
        assert_eq!(
            by_id_prefix(&all, &id.encoded()[..5]).unwrap().unwrap().id,
            id
        );
        assert!(by_id_prefix(&all, "").is_err() || all.len() < 2);
        assert!(by_id_prefix(&all, "zz").unwrap().is_none());
        // two different ids share the empty-ish prefix of one hex digit often;
        // build an ambiguous prefix explicitly
        let common: String = Digest::sha256_of(b"1")
            .encoded()
            .chars()
            .zip(Digest::sha256_of(b"2").encoded().chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect();
        assert!(matches!(
            by_id_prefix(&all, &common),
            Err(Error::Ambiguous(_))
        ));
        assert_eq!(id_hex("sha256:abc"), Some("abc"));
        assert_eq!(id_hex("busybox"), None);
    }
}
