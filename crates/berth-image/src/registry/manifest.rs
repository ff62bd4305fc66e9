//! Fetching manifests: content negotiation, media type checks, digest
//! verification; and the `/v2/` login check.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use sha2::{Digest as _, Sha256, Sha512};

use super::endpoint::{endpoints, Endpoint};
use super::error::Details;
use super::transport::{details, Request};
use super::{Client, Error, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::auth::{normalize_registry, Credentials};
use crate::{Digest, Reference};

/// The `Accept` header of manifest requests, most preferred first.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Registries cap manifests at a few MiB; so do we (containerd uses 4 MiB).
const MANIFEST_LIMIT: usize = 4 << 20;

/// A manifest exactly as the registry sent it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// the raw bytes (hash them, store them; never re-serialise)
    pub bytes: Vec<u8>,
    /// one of the four supported media types
    pub media_type: String,
    /// digest of `bytes`
    pub digest: Digest,
}

/// What a HEAD on a manifest tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`
    pub digest: Digest,
    /// `Content-Type`
    pub media_type: String,
    /// `Content-Length`
    pub size: u64,
}

/// The digest of `bytes` with `algorithm` (sha256 or sha512).
pub(crate) fn digest_with(algorithm: &str, bytes: &[u8]) -> Digest {
    if algorithm == "sha512" {
        let text = format!("sha512:{}", hex::encode(Sha512::digest(bytes)));
        if let Ok(d) = text.parse() {
            return d;
        }
    }
    Digest::from_sha256_bytes(&Sha256::digest(bytes))
}

impl Client {
    /// Fetch the manifest (or index) `r` names: by digest when it has one
    /// (verified), else by tag.
    pub async fn manifest(&self, r: &Reference) -> Result<FetchedManifest, Error> {
        let eps = endpoints(&self.inner.config, &r.registry, true);
        let mut last = None;
        for ep in &eps {
            match self.manifest_from(ep, r).await {
                Ok(m) => return Ok(m),
                Err(e) if ep.mirror => {
                    tracing::info!(mirror = %ep.base, error = %e, "mirror failed; trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| protocol(r, "no endpoint to try")))
    }

    async fn manifest_from(&self, ep: &Endpoint, r: &Reference) -> Result<FetchedManifest, Error> {
        let url = ep.url(&format!("{}/manifests/{}", r.repository, r.manifest_key()));
        let scopes = [pull_scope(&r.repository)];
        let req = Request::new(ep, &scopes);
        let mut response = self
            .inner
            .send(&req, &|http| {
                Ok(http.get(&url).header(ACCEPT, MANIFEST_ACCEPT))
            })
            .await?;
        if !response.status().is_success() {
            return Err(pull_error(r, details(response).await));
        }
        let header_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let header_digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|source| Error::Connect {
            registry: ep.registry.clone(),
            url: url.clone(),
            source,
        })? {
            if bytes.len() + chunk.len() > MANIFEST_LIMIT {
                return Err(Error::ManifestTooLarge {
                    name: r.to_string(),
                    limit: MANIFEST_LIMIT,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        let media_type = media_type_of(r, header_type.as_deref(), &bytes)?;
        let expected = r.digest.clone().or(header_digest);
        let algorithm = expected.as_ref().map_or("sha256", |d| d.algorithm());
        let digest = digest_with(algorithm, &bytes);
        if let Some(expected) = expected {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    what: "manifest",
                    name: r.to_string(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// HEAD the manifest `r` names: its digest, media type and size without
    /// downloading it (Docker Hub does not count HEADs against pull rate
    /// limits). `None` when the registry does not send `Docker-Content-Digest`.
    pub async fn manifest_descriptor(&self, r: &Reference) -> Result<Option<ManifestHead>, Error> {
        let eps = endpoints(&self.inner.config, &r.registry, true);
        let mut last = None;
        for ep in &eps {
            let url = ep.url(&format!("{}/manifests/{}", r.repository, r.manifest_key()));
            let scopes = [pull_scope(&r.repository)];
            let req = Request::new(ep, &scopes);
            let response = match self
                .inner
                .send(&req, &|http| {
                    Ok(http.head(&url).header(ACCEPT, MANIFEST_ACCEPT))
                })
                .await
            {
                Ok(r) => r,
                Err(e) if ep.mirror => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if !response.status().is_success() {
                let e = pull_error(r, details(response).await);
                if ep.mirror {
                    last = Some(e);
                    continue;
                }
                return Err(e);
            }
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let digest = header("docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
            let media_type = header("content-type").unwrap_or_default();
            let size = header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            return Ok(digest.map(|digest| ManifestHead {
                digest,
                media_type: media_type.split(';').next().unwrap_or("").trim().to_owned(),
                size,
            }));
        }
        Err(last.unwrap_or_else(|| protocol(r, "no endpoint to try")))
    }

    /// `login`: GET /v2/ with `creds` (answering a token challenge with
    /// them); on success the client uses them from now on.
    pub async fn check_login(&self, registry: &str, creds: &Credentials) -> Result<(), Error> {
        let registry = normalize_registry(registry);
        let eps = endpoints(&self.inner.config, &registry, false);
        let Some(ep) = eps.last() else {
            return Ok(());
        };
        let url = ep.url("");
        let req = Request {
            endpoint: ep,
            scopes: &[],
            creds: Some(creds),
        };
        let response = match self.inner.send(&req, &|http| Ok(http.get(&url))).await {
            Ok(r) => r,
            Err(Error::Token { details, .. }) => return Err(Error::Login { registry, details }),
            Err(e) => return Err(e),
        };
        if !response.status().is_success() {
            let details = details(response).await;
            return Err(Error::Login { registry, details });
        }
        self.set_credentials(&registry, creds.clone());
        Ok(())
    }
}

/// `repository:NAME:pull`.
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// Docker's wording for failed pulls.
pub(crate) fn pull_error(r: &Reference, details: Details) -> Error {
    let codes: Vec<&str> = details.errors.iter().map(|e| e.code.as_str()).collect();
    let denied = matches!(details.status, 401 | 403)
        || codes
            .iter()
            .any(|c| matches!(*c, "NAME_UNKNOWN" | "UNAUTHORIZED" | "DENIED"));
    let context = if denied {
        format!("pull access denied for {}", r.repository_name())
    } else if details.status == 404 {
        format!("manifest for {r} not found")
    } else {
        format!("pulling {r}")
    };
    Error::Registry { context, details }
}

pub(crate) fn protocol(r: &Reference, what: &str) -> Error {
    Error::Protocol {
        name: r.to_string(),
        what: what.to_owned(),
    }
}

/// The media type from the header, or from the body's `mediaType` when the
/// header is generic; schema1 and unknown types are refused.
fn media_type_of(r: &Reference, header: Option<&str>, bytes: &[u8]) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, rename = "mediaType")]
        media_type: Option<String>,
        #[serde(default, rename = "schemaVersion")]
        schema_version: Option<u32>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let generic = |t: &str| {
        matches!(
            t,
            "" | "application/json" | "text/plain" | "application/octet-stream"
        )
    };
    let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
    let media_type = match header.filter(|h| !generic(h)) {
        Some(h) => h.to_owned(),
        None => match &probe {
            Some(Probe {
                schema_version: Some(1),
                ..
            }) => SCHEMA1.to_owned(),
            Some(Probe {
                media_type: Some(m),
                ..
            }) => m.clone(),
            Some(Probe {
                manifests: Some(_), ..
            }) => OCI_INDEX.to_owned(),
            Some(_) => OCI_MANIFEST.to_owned(),
            None => header.unwrap_or_default().to_owned(),
        },
    };
    let reason = match media_type.as_str() {
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST => return Ok(media_type),
        SCHEMA1 | SCHEMA1_SIGNED => {
            "Docker Image manifest version 2, schema 1 is deprecated and not supported; \
             push the image again with a current Docker or skopeo to convert it"
        }
        _ => "unsupported manifest media type",
    };
    Err(Error::UnsupportedManifest {
        name: r.to_string(),
        media_type,
        reason,
    })
}

const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        let r = Reference::parse("x").unwrap();
        assert_eq!(
            media_type_of(&r, Some(OCI_MANIFEST), b"{}").unwrap(),
            OCI_MANIFEST
        );
        let body = format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}"}}"#);
        assert_eq!(
            media_type_of(&r, Some("application/json"), body.as_bytes()).unwrap(),
            DOCKER_MANIFEST_LIST
        );
        assert_eq!(
            media_type_of(&r, None, br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            OCI_INDEX
        );
        let e = media_type_of(&r, Some(SCHEMA1_SIGNED), b"{}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema 1 is deprecated"), "{e}");
        let e = media_type_of(&r, Some("application/json"), br#"{"schemaVersion":1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("schema 1"), "{e}");
        let e = media_type_of(&r, Some("text/html"), b"<html>")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unsupported manifest media type") && e.contains("text/html"),
            "{e}"
        );
    }
}
