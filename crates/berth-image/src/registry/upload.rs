//! The push side: blob existence checks, cross-repository mounts, blob
//! uploads streamed from a file (POST, then one monolithic PUT), and
//! manifest PUTs of exact bytes.

use std::path::Path;

use futures_util::stream;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode, Url};
use tokio::io::AsyncReadExt;

use super::endpoint::{endpoints, Endpoint};
use super::error::{Details, UrlError};
use super::manifest::{digest_with, protocol};
use super::transport::{details, Request};
use super::{Client, Error};
use crate::{Digest, Reference};

/// Read size when streaming a file to the registry.
const UPLOAD_CHUNK: usize = 256 << 10;

impl Client {
    /// Whether the repository already has the blob (HEAD).
    pub async fn blob_exists(&self, r: &Reference, digest: &Digest) -> Result<bool, Error> {
        let ep = push_endpoint(self, r);
        let url = ep.url(&format!("{}/blobs/{digest}", r.repository));
        let scopes = [push_scope(&r.repository)];
        let response = self
            .inner
            .send(&Request::new(&ep, &scopes), &|http| Ok(http.head(&url)))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(push_error(r, details(response).await)),
        }
    }

    /// Ask the registry to link a blob from `from_repo` (same registry)
    /// instead of uploading it; `false` when it would not.
    pub async fn mount_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        from_repo: &str,
    ) -> Result<bool, Error> {
        let ep = push_endpoint(self, r);
        let start = ep.url(&format!("{}/blobs/uploads/", r.repository));
        let mut url = Url::parse(&start).map_err(url_error(r, "bad registry URL", &start))?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from_repo);
        let scopes = [
            push_scope(&r.repository),
            format!("repository:{from_repo}:pull"),
        ];
        let response = self
            .inner
            .send(&Request::new(&ep, &scopes), &|http| {
                Ok(http.post(url.clone()).header(CONTENT_LENGTH, 0))
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // The registry opened an ordinary upload instead; drop it.
                // Best effort: an abandoned session only costs the registry
                // until it expires, and the caller uploads the blob anyway.
                if let Ok(loc) = upload_location(&ep, r, &response) {
                    let _ = self
                        .inner
                        .send(&Request::new(&ep, &scopes), &|http| {
                            Ok(http.delete(loc.clone()))
                        })
                        .await;
                }
                Ok(false)
            }
            _ => Err(push_error(r, details(response).await)),
        }
    }

    /// Upload `size` bytes of `path` as blob `digest`: POST opens an upload
    /// session, one PUT streams the file and names the digest. A failed
    /// session (other than refused access) is started over once.
    pub async fn upload_blob(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<(), Error> {
        match self.upload_session(r, digest, size, path).await {
            Err(e) if !matches!(e.status(), Some(401 | 403)) && !matches!(e, Error::Io { .. }) => {
                tracing::debug!(%digest, error = %e, "upload failed; starting a new session");
                self.upload_session(r, digest, size, path).await
            }
            other => other,
        }
    }

    async fn upload_session(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        path: &Path,
    ) -> Result<(), Error> {
        let ep = push_endpoint(self, r);
        let scopes = [push_scope(&r.repository)];
        let start = ep.url(&format!("{}/blobs/uploads/", r.repository));
        let response = self
            .inner
            .send(&Request::new(&ep, &scopes), &|http| {
                Ok(http.post(&start).header(CONTENT_LENGTH, 0))
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(push_error(r, details(response).await));
        }
        let mut put_url = upload_location(&ep, r, &response)?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let response = self
            .inner
            .send(&Request::new(&ep, &scopes), &|http| {
                let file = std::fs::File::open(path).map_err(|source| Error::Io {
                    path: path.to_owned(),
                    source,
                })?;
                Ok(http
                    .put(put_url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(file_body(file)))
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(push_error(r, details(response).await));
        }
        Ok(())
    }

    /// PUT manifest `bytes` (sent exactly) under `r`'s tag, or its digest if
    /// it has no tag; returns the manifest's digest.
    pub async fn put_manifest(
        &self,
        r: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, Error> {
        let ep = push_endpoint(self, r);
        let scopes = [push_scope(&r.repository)];
        let digest = digest_with("sha256", bytes);
        let key = r.tag.clone().unwrap_or_else(|| digest.to_string());
        let url = ep.url(&format!("{}/manifests/{key}", r.repository));
        let body = bytes::Bytes::copy_from_slice(bytes);
        let response = self
            .inner
            .send(&Request::new(&ep, &scopes), &|http| {
                Ok(http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.clone()))
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(push_error(r, details(response).await));
        }
        let echoed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        match echoed {
            Some(d) if d.algorithm() == "sha256" && d != digest => Err(Error::DigestMismatch {
                what: "pushed manifest",
                name: r.to_string(),
                expected: digest.to_string(),
                actual: d.to_string(),
            }),
            _ => Ok(digest),
        }
    }
}

fn push_endpoint(client: &Client, r: &Reference) -> Endpoint {
    let mut eps = endpoints(&client.inner.config, &r.registry, false);
    // Without mirrors the list is exactly the registry's own endpoint.
    eps.swap_remove(eps.len() - 1)
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The upload session URL from `Location` (relative ones resolved against
/// the endpoint).
fn upload_location(ep: &Endpoint, r: &Reference, response: &Response) -> Result<Url, Error> {
    let loc = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| protocol(r, "upload started without a Location header"))?;
    let base = Url::parse(&ep.base).map_err(url_error(r, "bad registry URL", &ep.base))?;
    base.join(loc).map_err(url_error(
        r,
        "unexpected response from registry: bad upload Location",
        loc,
    ))
}

/// A request body that streams the file in chunks.
fn file_body(file: std::fs::File) -> reqwest::Body {
    let file = tokio::fs::File::from_std(file);
    let chunks = stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    reqwest::Body::wrap_stream(chunks)
}

fn push_error(r: &Reference, details: Details) -> Error {
    let context = if matches!(details.status, 401 | 403) {
        format!("push access denied for {}", r.repository_name())
    } else {
        format!("pushing to {}", r.repository_name())
    };
    Error::Registry { context, details }
}

fn url_error<'a>(
    r: &'a Reference,
    what: &'static str,
    url: &'a str,
) -> impl FnOnce(UrlError) -> Error + 'a {
    move |source| Error::Url {
        name: r.to_string(),
        what,
        url: url.to_owned(),
        source,
    }
}
