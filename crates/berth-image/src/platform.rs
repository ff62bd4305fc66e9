//! Platform selection: which manifest of an index (or Docker manifest list)
//! a pull uses, by os/architecture/variant as `--platform` spells them.

use oci_spec::image::{Descriptor, ImageIndex};

use crate::store::Platform;

/// A `--platform` string that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
pub struct ParseError(String);

impl Platform {
    /// The platform this binary runs on (linux/amd64, linux/arm64/v8, …).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = match arch {
            "arm64" => Some("v8".to_owned()),
            "arm" => Some("v7".to_owned()),
            _ => None,
        };
        Self {
            os: "linux".to_owned(),
            architecture: arch.to_owned(),
            variant,
        }
    }

    /// Parse `os/arch[/variant]` (also accepts Docker's aliases `x86_64`,
    /// `aarch64`, and `arm64` with no variant meaning v8).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || ParseError(s.to_owned());
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let os = parts[0].to_ascii_lowercase();
        let (architecture, mut variant) =
            normalize_arch(&parts[1].to_ascii_lowercase(), parts.get(2).copied());
        if architecture == "arm64" && variant.is_none() {
            variant = Some("v8".to_owned());
        }
        Ok(Self {
            os,
            architecture,
            variant,
        })
    }

    /// Whether a manifest descriptor's platform satisfies this one. A missing
    /// variant on either side matches (Docker/containerd do the same for the
    /// common arm64 case, where indexes often omit `v8`).
    pub fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let (arch, variant) = normalize_arch(&arch.to_ascii_lowercase(), variant);
        if !os.eq_ignore_ascii_case(&self.os) || arch != self.architecture {
            return false;
        }
        match (&self.variant, variant) {
            (Some(want), Some(have)) => *want == have,
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(str::to_owned);
    match arch {
        "x86_64" | "x86-64" => ("amd64".to_owned(), None),
        "aarch64" => ("arm64".to_owned(), variant),
        "i386" => ("386".to_owned(), None),
        other => (other.to_owned(), variant),
    }
}

/// The manifest of `index` for `platform`: the first exact variant match,
/// else the first match ignoring a missing variant.
pub fn select<'a>(index: &'a ImageIndex, platform: &Platform) -> Option<&'a Descriptor> {
    let candidates = || {
        index.manifests().iter().filter_map(|d| {
            let p = d.platform().as_ref()?;
            let os = p.os().to_string();
            let arch = p.architecture().to_string();
            platform
                .matches(&os, &arch, p.variant().as_deref())
                .then_some((d, p.variant().as_deref() == platform.variant.as_deref()))
        })
    };
    candidates()
        .find(|(_, exact)| *exact)
        .or_else(|| candidates().next())
        .map(|(d, _)| d)
}

/// The platforms an index offers (for the "no matching manifest" error).
pub fn available(index: &ImageIndex) -> Vec<String> {
    index
        .manifests()
        .iter()
        .filter_map(|d| d.platform().as_ref())
        .map(|p| {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .collect()
}

#[allow(clippy::unwrap_used)]
#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"os":"linux","architecture":"arm","variant":"v6"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"os":"linux","architecture":"arm","variant":"v7"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","platform":{"os":"linux","architecture":"arm64"}}
    ]}"#;

    fn pick(p: &str) -> Option<char> {
        let index: ImageIndex = serde_json::from_str(INDEX).unwrap();
        select(&index, &Platform::parse(p).unwrap())
            .map(|d| d.digest().digest().chars().next().unwrap())
    }

    #[test]
    fn selects_by_os_arch_variant() {
        assert_eq!(pick("linux/amd64"), Some('3'));
        assert_eq!(pick("linux/x86_64"), Some('3'));
        assert_eq!(pick("linux/arm/v7"), Some('2'));
        assert_eq!(pick("linux/arm/v6"), Some('1'));
        assert_eq!(pick("linux/arm64"), Some('4'));
        assert_eq!(pick("linux/arm64/v8"), Some('4'));
        assert_eq!(pick("linux/s390x"), None);
        assert_eq!(pick("windows/amd64"), None);
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/aarch64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
        let host = Platform::host();
        assert_eq!(host.os, "linux");
    }
}
