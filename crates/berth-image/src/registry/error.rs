//! Registry client errors: each names the registry and repository, and
//! carries the HTTP status and the registry's `errors[]` JSON.

use std::fmt;
use std::path::PathBuf;

/// One entry of a registry's `{"errors":[{"code","message","detail"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ApiError {
    /// `NAME_UNKNOWN`, `MANIFEST_UNKNOWN`, `UNAUTHORIZED`, `DENIED`, …
    #[serde(default)]
    pub code: String,
    /// the registry's message
    #[serde(default)]
    pub message: String,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ApiError>,
}

/// Parse a registry error body; anything else yields no entries.
pub(crate) fn parse_api_errors(body: &[u8]) -> Vec<ApiError> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
}

/// The `errors[]` and HTTP status, as `message (CODE); … [HTTP 404]`.
#[derive(Debug, Clone)]
pub struct Details {
    pub status: u16,
    pub errors: Vec<ApiError>,
}

impl fmt::Display for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match (e.message.is_empty(), e.code.is_empty()) {
                (false, false) => write!(f, "{} ({})", e.message, e.code)?,
                (false, true) => f.write_str(&e.message)?,
                (true, _) => f.write_str(&e.code)?,
            }
        }
        if !self.errors.is_empty() {
            f.write_str(" ")?;
        }
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        write!(f, "[HTTP {} {}]", self.status, reason)
    }
}

/// Why a URL did not parse (`url::ParseError`, named through reqwest).
pub type UrlError = <reqwest::Url as std::str::FromStr>::Err;

/// Errors from the registry client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// the registry answered with an error status
    #[error("{context}: {details}")]
    Registry { context: String, details: Details },
    /// no connection, TLS failure, or the connection broke
    #[error("cannot reach registry {registry} ({url})")]
    Connect {
        registry: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// the token endpoint refused or failed
    #[error("getting a token for {registry} from {realm}: {details}")]
    Token {
        registry: String,
        realm: String,
        details: Details,
    },
    /// the token endpoint's answer has no token
    #[error("token endpoint {realm} for {registry} returned no token")]
    TokenMissing { registry: String, realm: String },
    /// login rejected
    #[error("login to {registry} failed: {details}")]
    Login { registry: String, details: Details },
    /// content does not match the digest it was asked for
    #[error("{what} from {name}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: &'static str,
        name: String,
        expected: String,
        actual: String,
    },
    /// a manifest type we do not read
    #[error("{name}: {reason} (media type {media_type:?})")]
    UnsupportedManifest {
        name: String,
        media_type: String,
        reason: &'static str,
    },
    /// a manifest larger than any real one
    #[error("{name}: manifest larger than {limit} bytes")]
    ManifestTooLarge { name: String, limit: usize },
    /// a response the protocol does not allow
    #[error("{name}: unexpected response from registry: {what}")]
    Protocol { name: String, what: String },
    /// a URL (the endpoint's, or the upload `Location` the registry sent)
    /// does not parse
    #[error("{name}: {what} {url:?}")]
    Url {
        name: String,
        what: &'static str,
        url: String,
        #[source]
        source: UrlError,
    },
    /// the blob stream broke and could not be resumed
    #[error("downloading {digest} from {name}: connection broke after {received} bytes")]
    Stream {
        name: String,
        digest: String,
        received: u64,
        #[source]
        source: Box<Error>,
    },
    /// reading a local file to upload
    #[error("reading {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// the credentials file
    #[error(transparent)]
    Credentials(#[from] crate::auth::Error),
    /// the HTTP client could not be built
    #[error("setting up the HTTP client")]
    Setup(#[source] reqwest::Error),
}

impl Error {
    /// The HTTP status the registry answered with, if that is the error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Registry { details, .. }
            | Error::Token { details, .. }
            | Error::Login { details, .. } => Some(details.status),
            _ => None,
        }
    }

    /// The registry's error codes (`MANIFEST_UNKNOWN`, …).
    pub fn codes(&self) -> Vec<&str> {
        match self {
            Error::Registry { details, .. } | Error::Login { details, .. } => {
                details.errors.iter().map(|e| e.code.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The thing asked for does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}
