//! `WWW-Authenticate` challenges (RFC 7235) as registries send them:
//! `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.

use std::collections::BTreeMap;

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// send `Authorization: Basic` with the user's credentials
    Basic,
    /// get a token from `realm` and send `Authorization: Bearer`
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parse every challenge in the header values (one header may hold several),
/// skipping schemes we do not speak and Bearer challenges without a realm.
pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        for (scheme, params) in split_challenges(value) {
            if scheme.eq_ignore_ascii_case("basic") {
                out.push(Challenge::Basic);
            } else if scheme.eq_ignore_ascii_case("bearer") {
                if let Some(realm) = params.get("realm") {
                    out.push(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
            }
        }
    }
    out
}

/// The challenge to answer: Bearer if offered (it also works anonymously),
/// else Basic.
pub fn preferred(challenges: Vec<Challenge>) -> Option<Challenge> {
    let mut basic = None;
    for c in challenges {
        match c {
            Challenge::Bearer { .. } => return Some(c),
            Challenge::Basic => basic = Some(c),
        }
    }
    basic
}

type Params = BTreeMap<String, String>;

/// Tokenise `scheme k=v, k="v", scheme2 k=v`.
fn split_challenges(value: &str) -> Vec<(String, Params)> {
    let mut out: Vec<(String, Params)> = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let start = i;
        while i < b.len() && !matches!(b[i], b'=' | b',') && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let token = value[start..i].to_owned();
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            let (val, next) = read_value(value, j + 1);
            i = next;
            if let Some((_, params)) = out.last_mut() {
                params.insert(token.to_ascii_lowercase(), val);
            }
        } else {
            out.push((token, Params::new()));
        }
    }
    out
}

/// A quoted string (with `\` escapes) or a bare token, from byte `i`.
fn read_value(value: &str, mut i: usize) -> (String, usize) {
    let b = value.as_bytes();
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut out = String::new();
    if i < b.len() && b[i] == b'"' {
        let mut chars = value[i + 1..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => return (out, i + 1 + k + 1),
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        out.push(e);
                    }
                }
                c => out.push(c),
            }
        }
        return (out, b.len());
    }
    let start = i;
    while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
        i += 1;
    }
    (value[start..i].to_owned(), i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let v = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse([v]),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
    }

    #[test]
    fn basic_tokens_escapes_and_several_challenges() {
        assert_eq!(
            parse([r#"Basic realm="Registry Realm""#]),
            vec![Challenge::Basic]
        );
        let v = r#"Basic realm="a, b", BEARER realm=http://127.0.0.1:1/token , service="x\"y",error="insufficient_scope""#;
        let got = parse([v]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("x\"y".into()),
                scope: None,
            }
        );
        assert_eq!(preferred(got.clone()), Some(got[1].clone()));
        assert_eq!(preferred(vec![Challenge::Basic]), Some(Challenge::Basic));
    }

    #[test]
    fn unknown_or_incomplete_challenges_are_skipped() {
        assert!(parse(["Negotiate abc", "Bearer service=x", ""]).is_empty());
        assert_eq!(preferred(Vec::new()), None);
    }
}
