//! Sending one registry request: attach credentials or a cached token,
//! answer a 401 challenge once, retry 429/5xx/broken connections with
//! bounded exponential backoff (honouring `Retry-After`).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use super::challenge::{self, Challenge};
use super::endpoint::Endpoint;
use super::error::{parse_api_errors, Details};
use super::{Config, Error};
use crate::auth::{CredentialStore, Credentials};

/// Attempts per request (the first try included).
const ATTEMPTS: u32 = 4;
/// First backoff delay; doubles per attempt.
const FIRST_DELAY: Duration = Duration::from_millis(200);
/// Longest `Retry-After` we wait for before giving up the wait and retrying.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Token lifetime when the token endpoint does not say (the spec's default).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

/// A token and when to stop using it.
#[derive(Clone)]
struct Token {
    value: String,
    refresh_at: Instant,
}

/// Shared state of every clone of a `Client`.
pub(crate) struct Inner {
    /// for remote hosts (honours the system's proxy settings)
    pub(crate) http: reqwest::Client,
    /// for loopback hosts: never through a proxy
    direct: reqwest::Client,
    pub(crate) config: Config,
    credentials: RwLock<CredentialStore>,
    /// the last challenge each registry sent, so later requests
    /// authenticate up front instead of collecting a 401 first
    challenges: Mutex<HashMap<String, Challenge>>,
    /// tokens by (registry, scopes)
    tokens: Mutex<HashMap<(String, String), Token>>,
    /// held while fetching a token, so parallel requests that all miss the
    /// cache (layers starting together) fetch it once
    token_fetch: tokio::sync::Mutex<()>,
    attempts: u32,
    first_delay: Duration,
}

/// What one request needs besides its builder.
pub(crate) struct Request<'a> {
    pub endpoint: &'a Endpoint,
    /// token scopes, e.g. `repository:library/busybox:pull`
    pub scopes: &'a [String],
    /// credentials to use instead of the stored ones (login check)
    pub creds: Option<&'a Credentials>,
}

impl<'a> Request<'a> {
    /// A request to `endpoint` with the stored credentials.
    pub(crate) fn new(endpoint: &'a Endpoint, scopes: &'a [String]) -> Self {
        Request {
            endpoint,
            scopes,
            creds: None,
        }
    }
}

impl Inner {
    pub(crate) fn new(config: Config, credentials: CredentialStore) -> Result<Self, Error> {
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(120))
        };
        Ok(Self {
            http: builder().build().map_err(Error::Setup)?,
            direct: builder().no_proxy().build().map_err(Error::Setup)?,
            config,
            credentials: RwLock::new(credentials),
            challenges: Mutex::default(),
            tokens: Mutex::default(),
            token_fetch: tokio::sync::Mutex::default(),
            attempts: ATTEMPTS,
            first_delay: FIRST_DELAY,
        })
    }

    pub(crate) fn with_retry(other: &Inner, attempts: u32, first_delay: Duration) -> Self {
        let credentials = other
            .credentials
            .read()
            .map(|c| c.clone())
            .unwrap_or_default();
        Self {
            http: other.http.clone(),
            direct: other.direct.clone(),
            config: other.config.clone(),
            credentials: RwLock::new(credentials),
            challenges: Mutex::default(),
            tokens: Mutex::default(),
            token_fetch: tokio::sync::Mutex::default(),
            attempts: attempts.max(1),
            first_delay,
        }
    }

    pub(crate) fn set_credentials(&self, registry: &str, creds: Credentials) {
        if let Ok(mut store) = self.credentials.write() {
            store.insert(registry, creds);
        }
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.retain(|(r, _), _| r != registry);
        }
    }

    fn stored_credentials(&self, registry: &str) -> Option<Credentials> {
        self.credentials.read().ok()?.get(registry).cloned()
    }

    /// Backoff before attempt `n + 1` (n ≥ 1): first_delay · 2^(n-1).
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        self.first_delay * 2u32.saturating_pow(n.saturating_sub(1))
    }

    /// The HTTP client for `url`: direct for loopback hosts.
    fn http_for(&self, url: &str) -> &reqwest::Client {
        let host = url.split("://").nth(1).unwrap_or(url);
        let host = host.split(['/', '?']).next().unwrap_or(host);
        if crate::reference::is_loopback_host(host) {
            &self.direct
        } else {
            &self.http
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Send a request built by `build` (called once per attempt), returning
    /// the final response whatever its status; errors only when no response
    /// came back at all.
    pub(crate) async fn send(
        &self,
        req: &Request<'_>,
        build: &(dyn Fn(&reqwest::Client) -> Result<RequestBuilder, Error> + Sync),
    ) -> Result<Response, Error> {
        let ep = req.endpoint;
        let creds = match req.creds {
            Some(c) => Some(c.clone()),
            None => self.stored_credentials(&ep.registry),
        };
        let mut attempt = 0;
        let mut answered_challenge = false;
        loop {
            attempt += 1;
            let mut builder = build(self.http_for(&ep.base))?;
            let sent_auth = self.authorization(ep, req.scopes, creds.as_ref()).await?;
            if let Some(value) = &sent_auth {
                builder = builder.header(AUTHORIZATION, value);
            }
            let response = match builder.send().await {
                Ok(r) => r,
                Err(source) if attempt < self.attempts && retryable_error(&source) => {
                    tracing::debug!(registry = %ep.registry, error = %source, attempt, "retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
                Err(source) => {
                    return Err(Error::Connect {
                        registry: ep.registry.clone(),
                        url: ep.base.clone(),
                        source,
                    })
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !answered_challenge {
                answered_challenge = true;
                let headers = response.headers();
                let have_creds = creds.is_some();
                if self.learn_challenge(ep, req.scopes, headers, have_creds, sent_auth.as_deref()) {
                    attempt -= 1;
                    continue;
                }
                return Ok(response);
            }
            if retryable_status(status) && attempt < self.attempts {
                let wait = retry_after(response.headers()).unwrap_or_else(|| self.backoff(attempt));
                tracing::debug!(registry = %ep.registry, %status, attempt, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok(response);
        }
    }

    /// Remember the challenge and drop the token it rejected (only that
    /// one: a parallel request may have cached a fresh one meanwhile);
    /// whether a retry can do better (Bearer: a fresh token; Basic: only if
    /// we have credentials and did not just send them).
    fn learn_challenge(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        headers: &HeaderMap,
        have_creds: bool,
        sent_auth: Option<&str>,
    ) -> bool {
        let values = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let Some(ch) = challenge::preferred(challenge::parse(values)) else {
            return false;
        };
        let retry = match &ch {
            Challenge::Bearer { .. } => true,
            Challenge::Basic => have_creds && sent_auth.is_none(),
        };
        let key = (ep.registry.clone(), scopes.join(" "));
        if let (Some(sent), Ok(mut tokens)) = (sent_auth, self.tokens.lock()) {
            if tokens
                .get(&key)
                .is_some_and(|t| sent.strip_prefix("Bearer ") == Some(t.value.as_str()))
            {
                tokens.remove(&key);
            }
        }
        if let Ok(mut map) = self.challenges.lock() {
            map.insert(ep.registry.clone(), ch);
        }
        retry
    }

    /// The `Authorization` value for a request, if the registry asked for one.
    async fn authorization(
        &self,
        ep: &Endpoint,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<Option<String>, Error> {
        let known = self
            .challenges
            .lock()
            .ok()
            .and_then(|m| m.get(&ep.registry).cloned());
        match known {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(creds.map(basic_header)),
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let key = (ep.registry.clone(), scopes.join(" "));
                if let Some(value) = self.cached_token(&key) {
                    return Ok(Some(value));
                }
                let _fetching = self.token_fetch.lock().await;
                if let Some(value) = self.cached_token(&key) {
                    return Ok(Some(value));
                }
                let mut wanted: Vec<String> = scopes.to_vec();
                if let Some(s) = scope.filter(|s| !wanted.contains(s)) {
                    wanted.push(s);
                }
                let token = self
                    .fetch_token(&ep.registry, &realm, service.as_deref(), &wanted, creds)
                    .await?;
                let value = format!("Bearer {}", token.value);
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.insert(key, token);
                }
                Ok(Some(value))
            }
        }
    }

    /// `Bearer <token>` from the cache, if still fresh.
    fn cached_token(&self, key: &(String, String)) -> Option<String> {
        let tokens = self.tokens.lock().ok()?;
        let t = tokens.get(key).filter(|t| Instant::now() < t.refresh_at)?;
        Some(format!("Bearer {}", t.value))
    }

    /// The token dance: GET realm?service=…&scope=… (Basic auth when we have
    /// credentials), or the OAuth2 refresh-token POST for an identity token.
    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<Token, Error> {
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            let builder = match creds.and_then(|c| c.identity_token.as_deref()) {
                Some(refresh) => {
                    let mut form = vec![
                        ("grant_type", "refresh_token".to_owned()),
                        ("refresh_token", refresh.to_owned()),
                        ("client_id", "berth".to_owned()),
                        ("scope", scopes.join(" ")),
                    ];
                    if let Some(s) = service {
                        form.push(("service", s.to_owned()));
                    }
                    self.http_for(realm).post(realm).form(&form)
                }
                None => {
                    let mut query: Vec<(&str, &str)> = Vec::new();
                    if let Some(s) = service {
                        query.push(("service", s));
                    }
                    query.extend(scopes.iter().map(|s| ("scope", s.as_str())));
                    let b = self.http_for(realm).get(realm).query(&query);
                    match creds {
                        Some(c) if !c.username.is_empty() => {
                            b.header(AUTHORIZATION, basic_header(c))
                        }
                        _ => b,
                    }
                }
            };
            match builder.send().await {
                Ok(r) if retryable_status(r.status()) && attempt < self.attempts => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Ok(r) => break r,
                Err(e) if retryable_error(&e) && attempt < self.attempts => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(source) => {
                    return Err(Error::Connect {
                        registry: registry.to_owned(),
                        url: realm.to_owned(),
                        source,
                    })
                }
            }
        };
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Error::Token {
                registry: registry.to_owned(),
                realm: realm.to_owned(),
                details: Details {
                    status: status.as_u16(),
                    errors: parse_api_errors(&body),
                },
            });
        }
        parse_token(&body).ok_or_else(|| Error::TokenMissing {
            registry: registry.to_owned(),
            realm: realm.to_owned(),
        })
    }
}

#[derive(serde::Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `{"token"|"access_token", "expires_in"}`; refreshed a little before expiry.
fn parse_token(body: &[u8]) -> Option<Token> {
    let b: TokenBody = serde_json::from_slice(body).ok()?;
    let value = b.token.filter(|t| !t.is_empty()).or(b.access_token)?;
    let lifetime = b
        .expires_in
        .filter(|&s| s > 0)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    let margin = (lifetime / 10).min(30);
    Some(Token {
        value,
        refresh_at: Instant::now() + Duration::from_secs(lifetime - margin),
    })
}

fn basic_header(c: &Credentials) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

/// 429 and the 5xx statuses a retry can fix.
pub(crate) fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Connection refused/reset, timeouts: worth another try.
pub(crate) fn retryable_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

/// `Retry-After: <seconds>` (HTTP dates are treated as "soon"), capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Read an error response into `Details`.
pub(crate) async fn details(response: Response) -> Details {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    Details {
        status,
        errors: parse_api_errors(&body),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn token_bodies() {
        let t = parse_token(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.value, "abc");
        assert!(t.refresh_at > Instant::now() + Duration::from_secs(260));
        let t = parse_token(br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!(t.value, "xyz");
        assert!(t.refresh_at <= Instant::now() + Duration::from_secs(60));
        assert!(parse_token(br#"{"token":""}"#).is_none());
        assert!(parse_token(b"nope").is_none());
    }

    #[test]
    fn retry_after_is_capped_and_dates_ignored() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
