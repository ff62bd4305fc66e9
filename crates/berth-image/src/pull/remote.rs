//! The two registry calls a pull makes, behind one small type so the pull
//! pipeline depends only on `manifest`, `blob`, `next_chunk` and `offset`.

use bytes::Bytes;

use crate::registry::{self, BlobStream as RegistryStream, Client};
use crate::{Digest, Reference};

/// A registry request failed.
pub type RemoteError = registry::Error;

/// A fetched manifest (index, list or image manifest).
pub struct Fetched {
    pub bytes: Bytes,
    pub media_type: String,
}

/// One repository of one registry.
pub struct Remote {
    client: Client,
    reference: Reference,
}

impl Remote {
    /// Calls for `reference`'s repository through `client`.
    pub fn new(client: Client, reference: &Reference) -> Self {
        Self {
            client,
            reference: reference.clone(),
        }
    }

    /// GET the manifest `key` (the reference's tag, or a digest).
    pub async fn manifest(&self, key: &str) -> Result<Fetched, RemoteError> {
        let r = match key.parse::<Digest>() {
            Ok(d) => self.reference.with_digest(d),
            Err(_) => self.reference.clone(),
        };
        let m = self.client.manifest(&r).await?;
        Ok(Fetched {
            bytes: Bytes::from(m.bytes),
            media_type: m.media_type,
        })
    }

    /// GET a blob from byte `offset` (the server may ignore the Range: then
    /// [`BlobStream::offset`] is 0).
    pub async fn blob(&self, digest: &Digest, offset: u64) -> Result<BlobStream, RemoteError> {
        let inner = self.client.blob(&self.reference, digest, offset).await?;
        Ok(BlobStream { inner })
    }
}

/// A blob body arriving (resumed by the registry client after a broken
/// connection, a bounded number of times).
pub struct BlobStream {
    inner: RegistryStream,
}

impl BlobStream {
    /// Where the body starts in the blob.
    pub fn offset(&self) -> u64 {
        self.inner.offset()
    }

    /// The next piece of the body; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, RemoteError> {
        self.inner.next_chunk().await
    }
}
