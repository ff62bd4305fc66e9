//! Content digests (`algorithm:hex`), as the OCI image spec defines them.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A digest that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// the string has no `algorithm:` prefix
    #[error("invalid digest {0:?}: expected algorithm:hex")]
    Format(String),
    /// the algorithm is not one we can verify
    #[error("invalid digest {0:?}: unsupported algorithm (sha256 and sha512 are supported)")]
    Algorithm(String),
    /// the hex part has the wrong length or characters
    #[error("invalid digest {0:?}: encoded part must be lowercase hex of the algorithm's length")]
    Encoded(String),
}

/// A validated `sha256:<64 hex>` or `sha512:<128 hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    colon: usize,
}

impl Digest {
    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Self {
        Self::from_sha256_bytes(&Sha256::digest(data))
    }

    /// Build a sha256 digest from a finished hash.
    pub fn from_sha256_bytes(hash: &[u8]) -> Self {
        Self {
            text: format!("sha256:{}", hex::encode(hash)),
            colon: 6,
        }
    }

    /// `sha256` or `sha512`.
    pub fn algorithm(&self) -> &str {
        &self.text[..self.colon]
    }

    /// The hex part.
    pub fn encoded(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    /// The full `algorithm:hex` text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (alg, enc) = s
            .split_once(':')
            .ok_or_else(|| Error::Format(s.to_owned()))?;
        let len = match alg {
            "sha256" => 64,
            "sha512" => 128,
            _ => return Err(Error::Algorithm(s.to_owned())),
        };
        if enc.len() != len || !enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::Encoded(s.to_owned()));
        }
        Ok(Self {
            text: s.to_owned(),
            colon: alg.len(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.as_str().parse::<Digest>().ok(), Some(d.clone()));
        assert!(matches!("sha256".parse::<Digest>(), Err(Error::Format(_))));
        assert!(matches!(
            "md5:abcd".parse::<Digest>(),
            Err(Error::Algorithm(_))
        ));
        assert!(matches!(
            "sha256:ABCD".parse::<Digest>(),
            Err(Error::Encoded(_))
        ));
    }
}
