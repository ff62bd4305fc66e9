//! Blob downloads: GET with `Range`, redirects to blob storage (reqwest
//! drops `Authorization` when a redirect changes host or port), and streams
//! that transparently resume after a broken connection.

use bytes::Bytes;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Response, StatusCode};

use super::endpoint::{endpoints, Endpoint};
use super::manifest::{protocol, pull_error, pull_scope};
use super::transport::{details, Request};
use super::{Client, Error};
use crate::{Digest, Reference};

/// A blob's bytes as they arrive. A broken connection is resumed from where
/// it stopped (with `Range`, or by skipping what the server sends again if
/// it ignores `Range`), a bounded number of times.
pub struct BlobStream {
    client: Client,
    endpoint: Endpoint,
    reference: Reference,
    digest: Digest,
    response: Response,
    /// where the first byte of this stream sits in the blob
    offset: u64,
    /// the blob's full size, when known
    total: Option<u64>,
    /// absolute position of the next byte handed out
    position: u64,
    /// bytes the current response will repeat (server ignored Range on resume)
    skip: u64,
    resumes: u32,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("digest", &self.digest)
            .field("offset", &self.offset)
            .field("total", &self.total)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl BlobStream {
    /// Where this stream starts in the blob: the requested offset, or 0 when
    /// the server ignored `Range` (then the caller must restart hashing).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The whole blob's size (not just what is left), when the server said.
    pub fn total_len(&self) -> Option<u64> {
        self.total
    }

    /// Bytes handed out so far, counted from the start of the blob.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The next piece, or `None` at the end of the blob.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            let failure = match self.response.chunk().await {
                Ok(Some(chunk)) => {
                    let chunk = self.drop_repeated(chunk);
                    if chunk.is_empty() {
                        continue;
                    }
                    self.position += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Ok(None) => match self.total {
                    Some(total) if self.position < total => {
                        protocol(&self.reference, "the blob ended early")
                    }
                    _ => return Ok(None),
                },
                Err(source) => Error::Connect {
                    registry: self.endpoint.registry.clone(),
                    url: self.endpoint.base.clone(),
                    source,
                },
            };
            self.resume(failure).await?;
        }
    }

    fn drop_repeated(&mut self, mut chunk: Bytes) -> Bytes {
        if self.skip == 0 {
            return chunk;
        }
        let n = (chunk.len() as u64).min(self.skip);
        self.skip -= n;
        chunk.split_off(n as usize)
    }

    /// Ask again from `position`, up to the client's attempt budget.
    async fn resume(&mut self, failure: Error) -> Result<(), Error> {
        let give_up = |failure: Error, received| Error::Stream {
            name: self.reference.repository_name(),
            digest: self.digest.to_string(),
            received,
            source: Box::new(failure),
        };
        if self.resumes + 1 >= self.client.inner.attempts() {
            return Err(give_up(failure, self.position));
        }
        self.resumes += 1;
        tokio::time::sleep(self.client.inner.backoff(self.resumes)).await;
        tracing::debug!(digest = %self.digest, position = self.position, "resuming blob download");
        let (response, start, _) = match open(
            &self.client,
            &self.endpoint,
            &self.reference,
            &self.digest,
            self.position,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => return Err(give_up(e, self.position)),
        };
        self.response = response;
        self.skip = self.position - start;
        Ok(())
    }
}

impl Client {
    /// Download a blob from `offset` (sent as `Range: bytes=offset-` when
    /// non-zero). Check `BlobStream::offset()`: servers may ignore Range, and
    /// a 416 (offset past the end) restarts from 0 too.
    /// The caller verifies the digest of what it reads.
    pub async fn blob(
        &self,
        r: &Reference,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobStream, Error> {
        let eps = endpoints(&self.inner.config, &r.registry, true);
        let mut last = None;
        for ep in eps {
            let opened = match open(self, &ep, r, digest, offset).await {
                // What we have is all there is (or more): start over.
                Err(e) if offset > 0 && e.status() == Some(416) => {
                    open(self, &ep, r, digest, 0).await
                }
                other => other,
            };
            match opened {
                Ok((response, start, total)) => {
                    return Ok(BlobStream {
                        client: self.clone(),
                        endpoint: ep,
                        reference: r.clone(),
                        digest: digest.clone(),
                        response,
                        offset: start,
                        total,
                        position: start,
                        skip: 0,
                        resumes: 0,
                    })
                }
                Err(e) if ep.mirror => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| protocol(r, "no endpoint to try")))
    }
}

/// GET the blob from `offset`; returns the response, the offset its first
/// byte has, and the full size if known.
async fn open(
    client: &Client,
    ep: &Endpoint,
    r: &Reference,
    digest: &Digest,
    offset: u64,
) -> Result<(Response, u64, Option<u64>), Error> {
    let url = ep.url(&format!("{}/blobs/{}", r.repository, digest));
    let scopes = [pull_scope(&r.repository)];
    let req = Request::new(ep, &scopes);
    let response = client
        .inner
        .send(&req, &|http| {
            let b = http.get(&url);
            Ok(if offset > 0 {
                b.header(RANGE, format!("bytes={offset}-"))
            } else {
                b
            })
        })
        .await?;
    match response.status() {
        StatusCode::OK => {
            let total = response.content_length();
            Ok((response, 0, total))
        }
        StatusCode::PARTIAL_CONTENT => {
            let range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range);
            match range {
                Some((start, total)) if start <= offset => Ok((response, start, total)),
                _ => Err(protocol(r, "206 without a usable Content-Range")),
            }
        }
        _ => Err(pull_error(r, details(response).await)),
    }
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        assert_eq!(parse_content_range("bytes */200"), None);
    }
}
