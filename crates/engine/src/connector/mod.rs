//! The generic REST connector: builds requests from the spec (fixed headers and parameters,
//! the connection's values, the watermark where the spec sends it), sends them under the
//! request policy (R-E1–R-E3) paced by the provider's rate-limit headers, walks pages in
//! every supported pagination style (change feeds included), and fetches records by id.

pub mod auth;
pub mod signin;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::policy::{pace_from_headers, parse_retry_after, Backoff};
use crate::record::{kind_of, read_json, Fields, Record};

pub use auth::{Auth, AuthConfig, TokenTimes};
pub use spec::{ConnectorSpec, EntitySpec, Pagination};

use spec::{Incremental, SendIn, TimeFormat};

/// Limits for the requests of one execution.
#[derive(Debug, Clone)]
pub struct RequestPolicy {
    pub backoff: Backoff,
    pub request_timeout: Duration,
    pub max_rate_limit_waits: u32,
    /// The execution's deadline (R-E4): no wait or request goes past it.
    pub deadline: DateTime<Utc>,
}

/// What the policy did, for the execution row and diagnosis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub retries: u32,
    pub rate_limit_waits: u32,
    /// Number of 5xx answers seen (retried or not).
    pub server_errors: u32,
}

/// Called when a grant produced new token times, so they can be stored.
pub type TokenSink = Arc<dyn Fn(TokenTimes) + Send + Sync>;

/// A connection's API, ready to call.
pub struct Connector {
    http: reqwest::Client,
    base: Url,
    spec: Arc<ConnectorSpec>,
    auth: Arc<Auth>,
    clock: Arc<dyn Clock>,
    on_tokens: TokenSink,
    on_wait: Option<WaitSink>,
    /// The connection's `[values]` (a tenant id), for `{values.<name>}` in requests.
    values: BTreeMap<String, String>,
}

/// One request as it is sent: method, URL, the spec's fixed headers and a JSON body.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: HeaderMap,
    /// JSON text, sent as `application/json`.
    pub body: Option<Vec<u8>>,
}

impl Call {
    /// A GET with no headers of its own.
    pub fn get(url: Url) -> Call {
        Call {
            method: reqwest::Method::GET,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }
}

/// A set of fixed headers and query parameters (`headers`, `query` of a spec table).
type Extras<'a> = (&'a BTreeMap<String, String>, &'a BTreeMap<String, String>);

/// A record's change time, and its text as the watermark stores it.
pub type ChangeTime = (DateTime<Utc>, String);

/// One possible value of a connection-level value (`[values.<name>.choices]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// Told what a run waits for (in words) and until when, before every wait, so the admin
/// sees a paused run as paused rather than stuck.
pub type WaitSink = Arc<dyn Fn(String, DateTime<Utc>) + Send + Sync>;

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// The short, secret-free gist of a transport error.
pub(crate) fn reqwest_gist(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the body"
    } else {
        "request failed"
    };
    // reqwest's Display includes the URL (and so any query string): keep only the cause.
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}

/// Up to 200 characters of a body, for error messages, with every credential we sent
/// replaced by `[redacted]` first (so none is cut in half and left readable).
fn excerpt(body: &[u8], auth: &Auth) -> String {
    // A provider's error text worth showing is short; redact a bounded prefix only.
    let head = &body[..body.len().min(8 * 1024)];
    let text = auth.redact(&String::from_utf8_lossy(head));
    let text = text.trim();
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Redirects followed within one origin before giving up.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// Why the HTTP client refused to follow a redirect; found again in the error's sources.
#[derive(Debug)]
struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The engine's redirect rule: same origin only, at most [`MAX_REDIRECTS`]. A redirect to
/// another origin is refused before anything is sent there: reqwest drops `Authorization`
/// on a cross-host redirect but keeps an API-key header, and re-sends a token request's
/// form (with the client secret) on 307/308.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let other = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() != attempt.url().origin());
        if other {
            let origin = attempt.url().origin().ascii_serialization();
            return attempt.error(RedirectRefused(format!(
                "redirected to another origin ({origin}); not followed, credentials go only to the connection's origin"
            )));
        }
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(RedirectRefused(format!(
                "more than {MAX_REDIRECTS} redirects"
            )));
        }
        attempt.follow()
    })
}

/// The refusal, when a request failed because a redirect was not followed.
pub(crate) fn redirect_refusal(e: &reqwest::Error) -> Option<String> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return Some(r.0.clone());
        }
        src = s.source();
    }
    e.is_redirect()
        .then(|| "a redirect could not be followed".to_string())
}

/// Why reading a body stopped early.
pub(crate) enum BodyError {
    /// Past the limit (bytes).
    TooLarge(u64),
    Transport(reqwest::Error),
}

/// Read a whole body, refusing one past `limit` bytes: checked against its declared length
/// first, then while it arrives, so an endless body stops at the limit.
pub(crate) async fn read_body(
    resp: &mut reqwest::Response,
    limit: u64,
) -> std::result::Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let expected = resp.content_length().unwrap_or(0).min(limit);
    let mut buf = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if (buf.len() as u64).saturating_add(chunk.len() as u64) > limit {
            return Err(BodyError::TooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The first `limit` bytes of a body (an error answer's), ignoring the rest.
pub(crate) async fn read_prefix(resp: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            _ => break,
        }
    }
    buf
}

/// "N MB" for a byte limit.
pub(crate) fn megabytes(bytes: u64) -> String {
    let mb = bytes / (1024 * 1024);
    if mb > 0 {
        format!("{mb} MB")
    } else {
        format!("{bytes} bytes")
    }
}

enum Attempt {
    Done(Vec<u8>, HeaderMap),
    Retry(String),
}

impl Connector {
    pub fn new(
        http: reqwest::Client,
        base: Url,
        spec: Arc<ConnectorSpec>,
        auth: Arc<Auth>,
        clock: Arc<dyn Clock>,
        on_tokens: TokenSink,
    ) -> Self {
        Connector {
            http,
            base,
            spec,
            auth,
            clock,
            on_tokens,
            on_wait: None,
            values: BTreeMap::new(),
        }
    }

    /// The same connector with the connection's values (`{values.<name>}` in requests).
    pub fn with_values(mut self, values: BTreeMap<String, String>) -> Self {
        self.values = values;
        self
    }

    /// The same connector, telling `sink` about each wait.
    pub fn with_wait_sink(mut self, sink: WaitSink) -> Self {
        self.on_wait = Some(sink);
        self
    }

    pub fn spec(&self) -> &ConnectorSpec {
        &self.spec
    }

    /// Get a credential now, without a data request: for OAuth2 a token request, whose
    /// token is then cached for the first run. How credentials are verified when saved.
    pub async fn verify_credentials(&self) -> Result<()> {
        let (_, times) = self
            .auth
            .credential(&self.http, self.clock.as_ref())
            .await?;
        if let Some(t) = times {
            (self.on_tokens)(t);
        }
        Ok(())
    }

    /// A spec path on the connection's base URL; never anywhere else.
    fn url(&self, path: &str) -> Result<Url> {
        let u = spec::join_path(&self.base, path)
            .map_err(|e| Error::invalid("path", format!("'{path}': {e}")))?;
        self.check_origin(&u)?;
        Ok(u)
    }

    /// Credentials go to the connection's origin only: checked on every request URL, even
    /// though specs with paths that leave it are refused when loaded.
    fn check_origin(&self, u: &Url) -> Result<()> {
        if u.origin() != self.base.origin() {
            return Err(Error::invalid(
                "path",
                format!(
                    "a request to {} is not on the connection's origin {}; not sent, so no credential goes there",
                    u.origin().ascii_serialization(),
                    self.base.origin().ascii_serialization()
                ),
            ));
        }
        Ok(())
    }

    fn check_deadline(&self, policy: &RequestPolicy, what: &str) -> Result<()> {
        if self.clock.now() >= policy.deadline {
            return Err(Error::TimedOut(format!(
                "the execution timeout passed {what}"
            )));
        }
        Ok(())
    }

    async fn wait(
        &self,
        d: Duration,
        policy: &RequestPolicy,
        cancel: &CancellationToken,
        why: &str,
    ) -> Result<()> {
        // A provider may ask for any wait (Retry-After: 100000000000000): one that cannot
        // even be represented is past the deadline too.
        let until = chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| self.clock.now().checked_add_signed(d));
        let Some(until) = until.filter(|until| *until <= policy.deadline) else {
            return Err(Error::TimedOut(format!(
                "{why}: waiting {}s would pass the execution timeout",
                d.as_secs()
            )));
        };
        if let Some(sink) = &self.on_wait {
            sink(why.to_string(), until);
        }
        tokio::select! {
            _ = cancel.cancelled() => Err(Error::Cancelled),
            _ = self.clock.sleep(d) => Ok(()),
        }
    }

    /// GET `url` under the request policy and return the successful answer's body (at most
    /// the spec's body limit) and headers. A body that breaks off or stalls past the request
    /// timeout is retried like a failed request.
    pub async fn get(
        &self,
        url: &Url,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<(Vec<u8>, HeaderMap)> {
        self.send(&Call::get(url.clone()), policy, stats, cancel)
            .await
    }

    /// Send a request under the request policy (as [`Connector::get`]); the credential is
    /// added to the call's own headers.
    pub async fn send(
        &self,
        call: &Call,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<(Vec<u8>, HeaderMap)> {
        let url = &call.url;
        let path = url.path().to_string();
        self.check_origin(url)?;
        let limit = self.spec.limits.max_body_bytes();
        let mut retries = 0u32;
        let mut rate_waits = 0u32;
        let mut refreshed = false;
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            self.check_deadline(policy, &format!("before requesting {path}"))?;
            let (cred, times) = match self.auth.credential(&self.http, self.clock.as_ref()).await {
                Ok(c) => c,
                Err(e) => {
                    // The token endpoint being down or busy is the provider being down or
                    // busy (R-E2, R-E3): retried, never a reason to re-authenticate.
                    self.token_trouble(e, &mut retries, &mut rate_waits, policy, stats, cancel)
                        .await?;
                    continue;
                }
            };
            if let Some(t) = times {
                (self.on_tokens)(t);
            }
            let remaining = (policy.deadline - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            let deadline_bound = remaining < policy.request_timeout;
            // reqwest's per-request timeout runs until the body has been read, so a body
            // that never ends is cut by it too.
            let mut req = self
                .http
                .request(call.method.clone(), url.clone())
                .headers(call.headers.clone())
                .timeout(remaining.min(policy.request_timeout));
            if let Some(body) = &call.body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            req = cred.apply(req);
            let sent = tokio::select! {
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                r = req.send() => r,
            };
            let timed_out = |what: &str| {
                Error::TimedOut(format!("the execution timeout passed while {what} {path}"))
            };
            let attempt = match sent {
                Err(e) if redirect_refusal(&e).is_some() => {
                    return Err(Error::MalformedResponse {
                        path,
                        detail: redirect_refusal(&e).unwrap_or_default(),
                    });
                }
                Err(e) if e.is_timeout() && deadline_bound => {
                    return Err(timed_out("waiting for"));
                }
                Err(e) => Attempt::Retry(reqwest_gist(&e)),
                Ok(mut resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        let headers = resp.headers().clone();
                        let body = tokio::select! {
                            _ = cancel.cancelled() => return Err(Error::Cancelled),
                            b = read_body(&mut resp, limit) => b,
                        };
                        match body {
                            Ok(body) => Attempt::Done(body, headers),
                            Err(BodyError::TooLarge(limit)) => {
                                return Err(Error::MalformedResponse {
                                    path,
                                    detail: format!(
                                        "response larger than {} (limits.max_body_mb); not read further",
                                        megabytes(limit)
                                    ),
                                });
                            }
                            Err(BodyError::Transport(e)) if e.is_timeout() && deadline_bound => {
                                return Err(timed_out("reading"));
                            }
                            Err(BodyError::Transport(e)) => Attempt::Retry(format!(
                                "the body of {path} did not arrive in full: {}",
                                reqwest_gist(&e)
                            )),
                        }
                    } else if status == StatusCode::UNAUTHORIZED {
                        if refreshed {
                            return Err(Error::AuthExpired {
                                detail: format!(
                                    "{path} still answers HTTP 401 after a token refresh"
                                ),
                            });
                        }
                        refreshed = true;
                        match self
                            .auth
                            .refresh(cred.generation, &self.http, self.clock.as_ref())
                            .await
                        {
                            Ok(Some(t)) => (self.on_tokens)(t),
                            Ok(None) => {}
                            Err(e) => {
                                self.token_trouble(
                                    e,
                                    &mut retries,
                                    &mut rate_waits,
                                    policy,
                                    stats,
                                    cancel,
                                )
                                .await?
                            }
                        }
                        continue;
                    } else if status == StatusCode::TOO_MANY_REQUESTS {
                        let header = resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|h| parse_retry_after(h, self.clock.now()))
                            // Without Retry-After, the spec's own rate-limit headers may
                            // still say how long the window lasts (HubSpot's interval).
                            .or_else(|| {
                                self.spec
                                    .rate_limit
                                    .as_ref()
                                    .and_then(|r| r.pace(resp.headers(), self.clock.now()))
                            });
                        self.rate_wait(header, &mut rate_waits, &path, policy, stats, cancel)
                            .await?;
                        continue;
                    } else if status.is_server_error() {
                        stats.server_errors += 1;
                        Attempt::Retry(format!("HTTP {} from {path}", status.as_u16()))
                    } else {
                        let body = read_prefix(&mut resp, 8 * 1024).await;
                        return Err(Error::ProviderRejected {
                            status: status.as_u16(),
                            path,
                            excerpt: excerpt(&body, &self.auth),
                        });
                    }
                }
            };
            match attempt {
                Attempt::Done(body, headers) => return Ok((body, headers)),
                Attempt::Retry(detail) => {
                    self.backoff(&mut retries, detail, policy, stats, cancel)
                        .await?
                }
            }
        }
    }

    /// A token request that failed: retried when the provider was down or busy, otherwise
    /// the run's end (a refused credential expires the connection).
    async fn token_trouble(
        &self,
        e: Error,
        retries: &mut u32,
        rate_waits: &mut u32,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<()> {
        match e {
            Error::ProviderUnavailable { detail, .. } => {
                self.backoff(retries, detail, policy, stats, cancel).await
            }
            Error::RateLimited { .. } => {
                self.rate_wait(
                    None,
                    rate_waits,
                    "the token endpoint",
                    policy,
                    stats,
                    cancel,
                )
                .await
            }
            e => Err(e),
        }
    }

    /// Pause after a 429 for its Retry-After, or the backoff schedule without one (R-E3).
    async fn rate_wait(
        &self,
        retry_after: Option<Duration>,
        rate_waits: &mut u32,
        what: &str,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<()> {
        *rate_waits += 1;
        stats.rate_limit_waits += 1;
        if *rate_waits > policy.max_rate_limit_waits {
            return Err(Error::RateLimited {
                detail: format!("{what} answered 429 {rate_waits} times in a row"),
            });
        }
        let wait = retry_after.unwrap_or_else(|| {
            let i = (*rate_waits - 1).min(policy.backoff.retries().saturating_sub(1));
            policy.backoff.delay(i).unwrap_or(Duration::from_secs(1))
        });
        tracing::info!(
            what,
            wait_secs = wait.as_secs(),
            "rate limited (429); pausing"
        );
        self.wait(
            wait,
            policy,
            cancel,
            "rate limited by the provider (HTTP 429)",
        )
        .await
    }

    /// Wait before the next attempt of a failed request, or give up once the backoff
    /// schedule is used up (R-E2).
    async fn backoff(
        &self,
        retries: &mut u32,
        detail: String,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let Some(d) = policy.backoff.delay(*retries) else {
            return Err(Error::ProviderUnavailable {
                attempts: *retries + 1,
                detail,
            });
        };
        tracing::info!(%detail, retry = *retries + 1, wait_secs = d.as_secs(), "request failed; retrying");
        *retries += 1;
        stats.retries += 1;
        let why = format!(
            "provider error ({detail}), retry {} of {}",
            *retries,
            policy.backoff.retries()
        );
        self.wait(d, policy, cancel, &why).await
    }

    /// GET a JSON body, checked as strictly as parsing it into values would but kept as text;
    /// also honours rate-limit headers so the next request does not 429.
    async fn get_json(
        &self,
        url: &Url,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<(Box<RawValue>, HeaderMap)> {
        self.send_json(&Call::get(url.clone()), policy, stats, cancel)
            .await
    }

    /// Send a request for a JSON body (see [`Connector::get_json`]).
    async fn send_json(
        &self,
        call: &Call,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<(Box<RawValue>, HeaderMap)> {
        let (body, headers) = self.send(call, policy, stats, cancel).await?;
        let not_json = |e: serde_json::Error| Error::MalformedResponse {
            path: call.url.path().to_string(),
            detail: format!(
                "not valid JSON ({e}); body starts: {}",
                excerpt(&body, &self.auth)
            ),
        };
        let value = read_json(&body).map_err(not_json)?;
        if let Some(wait) = self.pace(&headers) {
            stats.rate_limit_waits += 1;
            self.wait(wait, policy, cancel, "pacing to the provider's rate limit")
                .await?;
        }
        Ok((value, headers))
    }

    /// How long to pause before the next request, from an answer's rate-limit headers:
    /// the spec's `[rate_limit]`, else the common `X-RateLimit-*` / `RateLimit-*` names.
    fn pace(&self, headers: &HeaderMap) -> Option<Duration> {
        if let Some(r) = &self.spec.rate_limit {
            return r.pace(headers, self.clock.now());
        }
        let header = |names: &[&str]| {
            names.iter().find_map(|n| {
                headers
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
        };
        pace_from_headers(
            header(&["x-ratelimit-remaining", "ratelimit-remaining"]).as_deref(),
            header(&["x-ratelimit-reset", "ratelimit-reset"]).as_deref(),
            self.clock.now(),
        )
    }

    /// A text of the spec with the connection's values filled in.
    fn fill(&self, text: &str) -> Result<String> {
        spec::fill_values(text, &self.values, &self.spec.values)
    }

    /// The fixed headers and query parameters of a data request: `[request]`'s, then each
    /// further set's (an entity's, a changes endpoint's); a later one replaces an earlier
    /// one of the same name.
    fn extras(&self, sets: &[Extras<'_>]) -> Result<(HeaderMap, Vec<(String, String)>)> {
        let mut headers = HeaderMap::new();
        let mut query: Vec<(String, String)> = Vec::new();
        let all = std::iter::once((&self.spec.request.headers, &self.spec.request.query))
            .chain(sets.iter().copied());
        for (h, q) in all {
            for (name, value) in h {
                let field = || format!("headers.{name}");
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| Error::invalid(field(), "is not a header name"))?;
                let value = HeaderValue::from_str(&self.fill(value)?)
                    .map_err(|_| Error::invalid(field(), "is not a valid header value"))?;
                headers.insert(name, value);
            }
            for (name, value) in q {
                let value = self.fill(value)?;
                query.retain(|(n, _)| n != name);
                query.push((name.clone(), value));
            }
        }
        Ok((headers, query))
    }

    /// The possible values of a connection-level value, listed with the connection's
    /// credentials (Xero's organisations). No `[request]` extras are sent: they may need
    /// the very value being chosen.
    pub async fn list_choices(
        &self,
        name: &str,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<Vec<Choice>> {
        let choices = self
            .spec
            .values
            .get(name)
            .and_then(|v| v.choices.as_ref())
            .ok_or_else(|| {
                Error::invalid(
                    format!("values.{name}"),
                    "the spec does not say where its choices are listed",
                )
            })?;
        let url = self.url(&choices.path)?;
        let (body, _) = self.get_json(&url, policy, stats, cancel).await?;
        let items = take_records(&Fields::of(&body), &choices.records, url.path())?;
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(items
            .iter()
            .filter_map(|item| {
                let f = item.fields();
                let value = text(f.at(&choices.value))?;
                let label = text(f.at(&choices.label)).unwrap_or_else(|| value.clone());
                Some(Choice { value, label })
            })
            .collect())
    }

    /// Start walking an entity's records: the list endpoint, or with `since` (an
    /// incremental run's watermark) what the entity's incremental configuration says
    /// lists the changes since then.
    pub fn pager(&self, entity: &str, since: Option<&str>, page_size: u32) -> Result<Pager> {
        let spec = self.spec.entity(entity)?.clone();
        let inc = spec.incremental_config();
        let change = inc.as_ref().map(|i| (i.field.clone(), i.field_format));
        let plan = match (inc, since) {
            (Some(inc), Some(since)) if inc.send.is_some() => {
                self.changes_plan(&spec, inc, since)?
            }
            _ => {
                let (headers, query) = self.extras(&[(&spec.headers, &spec.query)])?;
                ListPlan {
                    path: spec.path.clone(),
                    method: reqwest::Method::GET,
                    query,
                    since: None,
                    headers,
                    body: None,
                    records: spec.records.clone(),
                    record: None,
                    only: BTreeMap::new(),
                    change,
                    pagination: spec.pagination.clone(),
                    item_id: spec.id.clone(),
                    feed: false,
                }
            }
        };
        self.url(&plan.path)?;
        Ok(Pager {
            spec,
            plan,
            next: Some(Next::Start),
            page_size,
            number: 0,
            requested: HashMap::new(),
            last_ids: None,
            emitted: HashMap::new(),
        })
    }

    /// The requests listing an entity's changes since `since`.
    fn changes_plan(&self, spec: &EntitySpec, inc: Incremental, since: &str) -> Result<ListPlan> {
        let send = inc.send.clone().expect("checked by the caller");
        let own = inc.has_own_endpoint();
        // Another endpoint is another resource: the entity's own extras are for its list.
        let mut sets = Vec::new();
        if !own {
            sets.push((&spec.headers, &spec.query));
        }
        sets.push((&inc.headers, &inc.query));
        let (mut headers, query) = self.extras(&sets)?;
        let at = send.format.render(since)?;
        let mut since_param = None;
        match send.to {
            SendIn::Query => {
                since_param = Some((send.name.clone().unwrap_or_default(), at.clone()))
            }
            SendIn::Header => {
                let name = send.name.clone().unwrap_or_default();
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| Error::invalid("incremental.send.name", "is not a header name"))?;
                let value = HeaderValue::from_str(&at)
                    .map_err(|_| Error::invalid("incremental.send", "is not a header value"))?;
                headers.insert(name, value);
            }
            SendIn::Body => {}
        }
        let body = match inc.method {
            spec::Method::Get => None,
            spec::Method::Post => {
                let mut body = inc
                    .body
                    .clone()
                    .unwrap_or_else(|| Value::Object(Default::default()));
                self.fill_body(&mut body, (send.to == SendIn::Body).then_some(at.as_str()))?;
                match body {
                    Value::Object(m) => Some(m),
                    _ => return Err(Error::invalid("incremental.body", "must be a table")),
                }
            }
        };
        let feed = inc.record.is_some() || own;
        Ok(ListPlan {
            path: inc.path.clone().unwrap_or_else(|| spec.path.clone()),
            method: match inc.method {
                spec::Method::Get => reqwest::Method::GET,
                spec::Method::Post => reqwest::Method::POST,
            },
            query,
            since: since_param,
            headers,
            body,
            records: inc.records.clone().unwrap_or_else(|| spec.records.clone()),
            // An item of a change feed is not the record: its own id pages the feed.
            item_id: if inc.record.is_some() {
                "id".to_string()
            } else {
                spec.id.clone()
            },
            record: inc.record.clone(),
            only: inc.only.clone(),
            change: Some((inc.field.clone(), inc.field_format)),
            pagination: inc
                .pagination
                .clone()
                .unwrap_or_else(|| spec.pagination.clone()),
            feed,
        })
    }

    /// Fill a body template: `{values.<name>}` everywhere, and `{since}` with the time.
    fn fill_body(&self, v: &mut Value, since: Option<&str>) -> Result<()> {
        match v {
            Value::String(s) => {
                let mut t = self.fill(s)?;
                if let Some(at) = since {
                    t = t.replace("{since}", at);
                }
                *s = t;
            }
            Value::Array(items) => {
                for item in items {
                    self.fill_body(item, since)?;
                }
            }
            Value::Object(m) => {
                for item in m.values_mut() {
                    self.fill_body(item, since)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Fetch one record by id (`None` when the provider says 404, or cannot fetch by id).
    pub async fn fetch_one(
        &self,
        entity: &str,
        id: &str,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<Option<Record>> {
        let spec = self.spec.entity(entity)?;
        let Some(get) = &spec.get else {
            return Ok(None);
        };
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let mut url = self.url(&get.replace("{id}", &encoded))?;
        let (headers, query) = self.extras(&[(&spec.headers, &spec.query)])?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(&query);
        }
        let call = Call {
            headers,
            ..Call::get(url)
        };
        match self.send_json(&call, policy, stats, cancel).await {
            Ok((v, _)) => match &spec.get_record {
                None => Ok(Some(Record::new(v))),
                // Where a provider wraps the record (`{"Contacts": [ {...} ]}`); nothing
                // there is a record that no longer exists.
                Some(at) => Ok(Fields::of(&v).raw_at(at).map(|r| Record::new(r.to_owned()))),
            },
            Err(Error::ProviderRejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the entity can be fetched by id.
    pub fn can_fetch_one(&self, entity: &str) -> bool {
        self.spec.entity(entity).is_ok_and(|e| e.get.is_some())
    }
}

#[derive(Debug, Clone)]
enum Next {
    Start,
    Cursor(String),
    Page(u64),
    Offset(u64),
    Url(Url),
}

/// One fetched page.
#[derive(Debug)]
pub struct FetchedPage {
    pub records: Vec<Record>,
    /// Each record's change time (as the watermark would store it), when the page's
    /// listing says one; may be shorter than `records` (records fetched by id).
    pub change_times: Vec<Option<ChangeTime>>,
    /// 1-based page number within the execution.
    pub number: u64,
    /// Where the page started, for "batch in progress" notes.
    pub position: String,
}

/// The requests an entity's pages are fetched with, and how their items are read.
#[derive(Debug, Clone)]
struct ListPlan {
    path: String,
    method: reqwest::Method,
    /// Fixed query parameters, values filled in.
    query: Vec<(String, String)>,
    /// The watermark as a query parameter, sent after the paging parameters.
    since: Option<(String, String)>,
    headers: HeaderMap,
    /// A POST's JSON body; paging parameters are added to it.
    body: Option<serde_json::Map<String, Value>>,
    records: String,
    /// Where the record sits in each listed item; `None`: the item is the record.
    record: Option<String>,
    only: BTreeMap<String, spec::OneOrMany>,
    /// The change time's field in each item, and its format.
    change: Option<(String, TimeFormat)>,
    pagination: Pagination,
    /// The id field of listed items (cursors and the "does not advance" check).
    item_id: String,
    /// A change feed: one record may be listed several times; the newest wins.
    feed: bool,
}

/// Walks an entity's pages.
#[derive(Debug)]
pub struct Pager {
    spec: EntitySpec,
    plan: ListPlan,
    next: Option<Next>,
    page_size: u32,
    number: u64,
    /// A hash of every request made so far (URL and body), with its page number:
    /// pagination that asks for a page again never advances (a repeated cursor, a link to
    /// itself). Hashes keep this at a few bytes a page.
    requested: HashMap<u64, u64>,
    /// The previous page's ids, hashed, with its first and last id: numbered pages that
    /// keep returning the same ids never advance either.
    last_ids: Option<PageIds>,
    /// A change feed's records already handed out, with their change time: an older or
    /// equal listing of one of them later in the feed is dropped.
    emitted: HashMap<String, Option<DateTime<Utc>>>,
}

/// A page's id list in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PageIds {
    hash: u64,
    count: usize,
    first: String,
    last: String,
}

impl PageIds {
    fn of(records: &[Record], id_field: &str) -> Option<PageIds> {
        let id = |r: &Record| {
            r.fields()
                .raw_at(id_field)
                .map(|v| v.get().to_string())
                .unwrap_or_default()
        };
        let first = id(records.first()?);
        let last = id(records.last()?);
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for r in records {
            h.update(id(r).as_bytes());
            h.update(b"\0");
        }
        Some(PageIds {
            hash: h.digest(),
            count: records.len(),
            first,
            last,
        })
    }
}

impl Pager {
    /// What the next page is, for a "batch in progress" note before it is fetched.
    pub fn position(&self) -> String {
        let n = self.number + 1;
        match &self.next {
            Some(Next::Cursor(c)) => format!("page {n} (after {c})"),
            Some(Next::Page(p)) => format!("page {n} (page={p})"),
            Some(Next::Offset(o)) => format!("page {n} (offset {o})"),
            _ => format!("page {n}"),
        }
    }

    /// Fetch the next page, or `None` after the last. What a malformed page is said to
    /// hold (cursors, ids, a Link header) is the provider's text: redacted like any.
    pub async fn next_page(
        &mut self,
        connector: &Connector,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<Option<FetchedPage>> {
        self.fetch_next(connector, policy, stats, cancel)
            .await
            .map_err(|e| match e {
                Error::MalformedResponse { path, detail } => Error::MalformedResponse {
                    path,
                    detail: connector.auth.redact(&detail),
                },
                e => e,
            })
    }

    /// The request for the page `next` names: paging parameters in the query, or in a
    /// POST's body.
    fn call(&self, connector: &Connector, next: &Next) -> Result<Call> {
        let plan = &self.plan;
        if let Next::Url(u) = next {
            return Ok(Call {
                method: plan.method.clone(),
                url: u.clone(),
                headers: plan.headers.clone(),
                body: None,
            });
        }
        let size = u64::from(self.page_size);
        let mut paging: Vec<(&str, Value)> = Vec::new();
        match &plan.pagination {
            Pagination::None => {}
            Pagination::Cursor {
                limit_param,
                cursor_param,
                ..
            }
            | Pagination::NextCursor {
                limit_param,
                cursor_param,
                ..
            } => {
                paging.push((limit_param, Value::from(size)));
                if let Next::Cursor(c) = next {
                    paging.push((cursor_param, Value::from(c.as_str())));
                }
            }
            p @ Pagination::Page {
                page_param,
                first_page,
                ..
            } => {
                let n = match next {
                    Next::Page(n) => *n,
                    _ => *first_page,
                };
                paging.push((page_param, Value::from(n)));
                if let Some(size_param) = p.size_param() {
                    paging.push((size_param, Value::from(size)));
                }
            }
            Pagination::Offset {
                offset_param,
                limit_param,
            } => {
                let o = match next {
                    Next::Offset(o) => *o,
                    _ => 0,
                };
                paging.push((offset_param, Value::from(o)));
                paging.push((limit_param, Value::from(size)));
            }
            Pagination::Link { limit_param } => {
                paging.push((limit_param, Value::from(size)));
            }
        }
        let mut url = connector.url(&plan.path)?;
        let mut body = plan.body.clone();
        {
            let mut q = url.query_pairs_mut();
            q.extend_pairs(&plan.query);
            match &mut body {
                Some(b) => {
                    for (k, v) in paging {
                        b.insert(k.to_string(), v);
                    }
                }
                None => {
                    for (k, v) in paging {
                        let text = match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        q.append_pair(k, &text);
                    }
                }
            }
            if let Some((param, since)) = &plan.since {
                q.append_pair(param, since);
            }
        }
        // A URL without parameters keeps no empty `?`.
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(Call {
            method: plan.method.clone(),
            url,
            headers: plan.headers.clone(),
            body: body.map(|b| serde_json::to_vec(&b).expect("a JSON map serialises")),
        })
    }

    async fn fetch_next(
        &mut self,
        connector: &Connector,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<Option<FetchedPage>> {
        let Some(next) = self.next.take() else {
            return Ok(None);
        };
        let position = self.position();
        let call = self.call(connector, &next)?;
        let url = call.url.clone();
        let path = url.path().to_string();
        let key = {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(url.as_str().as_bytes());
            h.update(b"\0");
            h.update(call.body.as_deref().unwrap_or_default());
            h.digest()
        };
        if let Some(earlier) = self.requested.insert(key, self.number + 1) {
            let what = match &next {
                Next::Cursor(c) => format!("the cursor '{c}'"),
                Next::Url(_) => "the next link".to_string(),
                _ => "the page".to_string(),
            };
            return Err(Error::MalformedResponse {
                path,
                detail: format!(
                    "pagination does not advance: {what} for page {} asks for the same page as page {earlier}",
                    self.number + 1
                ),
            });
        }
        let (body, headers) = connector.send_json(&call, policy, stats, cancel).await?;
        // The body's top level is read once, for the records and for the paging fields.
        let top = Fields::of(&body);
        let items = take_records(&top, &self.plan.records, &path)?;
        self.number += 1;
        let n = items.len() as u64;
        let size = self
            .plan
            .pagination
            .fixed_page_size()
            .unwrap_or(self.page_size);
        if !matches!(self.plan.pagination, Pagination::None) {
            let cap = connector.spec.limits.max_page_records(size);
            if n > cap {
                return Err(Error::MalformedResponse {
                    path,
                    detail: format!(
                        "page {} holds {n} records though {} were asked for; more than {cap} in one page is refused (limits.max_page_records)",
                        self.number, size
                    ),
                });
            }
            // A change feed may list a record again on the next page (it changed while
            // the feed was read): its cursors and request checks show whether it advances.
            let ids = if self.plan.feed {
                None
            } else {
                PageIds::of(&items, &self.plan.item_id)
            };
            if let (Some(now), Some(before)) = (&ids, &self.last_ids) {
                if now == before {
                    return Err(Error::MalformedResponse {
                        path,
                        detail: format!(
                            "pagination does not advance: page {} returned the same {} ids as page {} ({} … {})",
                            self.number,
                            now.count,
                            self.number - 1,
                            now.first,
                            now.last
                        ),
                    });
                }
            }
            self.last_ids = ids;
        }
        let full = n >= u64::from(size);
        let following = self.following(connector, &top, &headers, &url, &items, next, n, full)?;
        let (records, change_times) = self.read_items(&items, &path)?;
        self.next = following;
        Ok(Some(FetchedPage {
            records,
            change_times,
            number: self.number,
            position,
        }))
    }

    /// The page after this one, or `None` after the last.
    #[allow(clippy::too_many_arguments)]
    fn following(
        &self,
        connector: &Connector,
        top: &Fields<'_>,
        headers: &HeaderMap,
        url: &Url,
        items: &[Record],
        next: Next,
        n: u64,
        full: bool,
    ) -> Result<Option<Next>> {
        let path = url.path().to_string();
        Ok(match &self.plan.pagination {
            Pagination::None => None,
            Pagination::Cursor { has_more, .. } => {
                let more = match top.at(has_more) {
                    Some(Value::Bool(b)) => b,
                    None | Some(Value::Null) => false,
                    Some(other) => {
                        return Err(Error::MalformedResponse {
                            path,
                            detail: format!("'{has_more}' should be true or false, got {other}"),
                        })
                    }
                };
                match items.last() {
                    Some(last) if more => Some(Next::Cursor(record_id(
                        &last.fields(),
                        &self.plan.item_id,
                        &path,
                    )?)),
                    _ => None,
                }
            }
            Pagination::NextCursor { cursor_field, .. } => match top.at(cursor_field) {
                Some(Value::String(c)) if !c.is_empty() && n > 0 => Some(Next::Cursor(c)),
                Some(Value::String(_)) | Some(Value::Null) | None => None,
                Some(other) => {
                    return Err(Error::MalformedResponse {
                        path,
                        detail: format!("'{cursor_field}' should be a string, got {other}"),
                    })
                }
            },
            Pagination::Page {
                first_page,
                total_pages,
                ..
            } => {
                let current = match next {
                    Next::Page(p) => p,
                    _ => *first_page,
                };
                // The last page by the provider's count, counted from the first page.
                let last = match total_pages {
                    None => None,
                    Some(field) => match top.at(field) {
                        Some(Value::Number(t)) if t.as_u64().is_some() => {
                            t.as_u64().map(|t| first_page + t.saturating_sub(1))
                        }
                        None | Some(Value::Null) => None,
                        Some(other) => {
                            return Err(Error::MalformedResponse {
                                path,
                                detail: format!("'{field}' should be a page count, got {other}"),
                            })
                        }
                    },
                };
                match last {
                    Some(last) if current >= last => None,
                    _ => full.then_some(Next::Page(current + 1)),
                }
            }
            Pagination::Offset { .. } => full.then(|| {
                let current = match next {
                    Next::Offset(o) => o,
                    _ => 0,
                };
                Next::Offset(current + n)
            }),
            Pagination::Link { .. } => {
                match link_next(headers, url).map_err(|detail| Error::MalformedResponse {
                    path: path.clone(),
                    detail,
                })? {
                    Some(u) if n > 0 => {
                        if u.origin() != connector.base.origin() {
                            return Err(Error::MalformedResponse {
                            path,
                            detail: format!("next link points to another origin ({}); not following it with credentials", u.origin().ascii_serialization()),
                        });
                        }
                        Some(Next::Url(u))
                    }
                    _ => None,
                }
            }
        })
    }

    /// A page's items as records: filtered by `only`, taken from `record`, each with its
    /// change time; in a change feed, only the newest listing of each record.
    fn read_items(
        &mut self,
        items: &[Record],
        path: &str,
    ) -> Result<(Vec<Record>, Vec<Option<ChangeTime>>)> {
        let plan = &self.plan;
        let mut records = Vec::with_capacity(items.len());
        let mut times: Vec<Option<ChangeTime>> = Vec::with_capacity(items.len());
        // In a feed: the index in `records` of each id handed out from this page.
        let mut at: HashMap<String, usize> = HashMap::new();
        for item in items {
            let fields = item.fields();
            if !spec::admits(&plan.only, &fields) {
                continue;
            }
            let time = plan.change.as_ref().and_then(|(field, format)| {
                let v = fields.at(field)?;
                let t = format.read(&v)?;
                // RFC 3339 texts are kept as the provider wrote them (as before issue
                // 15); other formats are stored normalised.
                let text = match (format, v) {
                    (TimeFormat::Rfc3339, Value::String(s)) => s,
                    _ => spec::normalised(t),
                };
                Some((t, text))
            });
            let record = match &plan.record {
                None => item.clone(),
                Some(inner) => match fields.raw_at(inner) {
                    Some(raw) => Record::new(raw.to_owned()),
                    None => {
                        return Err(Error::MalformedResponse {
                            path: path.to_string(),
                            detail: format!(
                                "a listed item has no '{inner}' (where the record should be)"
                            ),
                        })
                    }
                },
            };
            if plan.feed {
                if let Ok(id) = record_id(&record.fields(), &self.spec.id, path) {
                    let t = time.as_ref().map(|(t, _)| *t);
                    if let Some(before) = self.emitted.get(&id) {
                        if t <= *before {
                            continue;
                        }
                    }
                    if let Some(&i) = at.get(&id) {
                        let earlier = times[i].as_ref().map(|(t, _)| *t);
                        if t > earlier {
                            records[i] = record;
                            times[i] = time;
                        }
                        continue;
                    }
                    at.insert(id, records.len());
                }
            }
            records.push(record);
            times.push(time);
        }
        for (id, i) in at {
            let t = times[i].as_ref().map(|(t, _)| *t);
            self.emitted.insert(id, t);
        }
        Ok((records, times))
    }
}

/// A page's records at the spec's dotted `path` (`""`: the body is the array), one JSON
/// text each; the rest of the body stays for `has_more` and cursors.
pub fn take_records(page: &Fields<'_>, path: &str, url_path: &str) -> Result<Vec<Record>> {
    let Some(target) = page.raw_at(path) else {
        return Err(Error::MalformedResponse {
            path: url_path.to_string(),
            detail: format!("the records field '{path}' is missing"),
        });
    };
    match serde_json::from_str::<Vec<Box<RawValue>>>(target.get()) {
        Ok(items) => Ok(items.into_iter().map(Record::new).collect()),
        Err(_) => Err(Error::MalformedResponse {
            path: url_path.to_string(),
            detail: format!(
                "'{}' should be an array of records, got {}",
                if path.is_empty() { "body" } else { path },
                kind_of(target)
            ),
        }),
    }
}

/// The provider id of a record as a string.
pub fn record_id(record: &Fields<'_>, id_field: &str, path: &str) -> Result<String> {
    match record.at(id_field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(Error::MalformedResponse {
            path: path.to_string(),
            detail: format!("a record has no '{id_field}'"),
        }),
    }
}

/// The `rel="next"` target of the `Link` headers (RFC 8288, parsed by `nom-rfc8288`, so a
/// target may hold commas and semicolons), resolved against the page's URL. A header that
/// cannot be read is an error: ending the walk there would complete a run short.
fn link_next(headers: &HeaderMap, base: &Url) -> std::result::Result<Option<Url>, String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let value = value
            .to_str()
            .map_err(|_| "the Link header is not ASCII text".to_string())?;
        let links =
            nom_rfc8288::complete::link_lenient::<nom_language::error::VerboseError<&str>>(value)
                .map_err(|_| {
                let shown: String = value.chars().take(100).collect();
                format!("the Link header is not RFC 8288 links: '{shown}'")
            })?;
        for link in links.into_iter().flatten() {
            let is_next = link.params.iter().any(|p| {
                p.key.eq_ignore_ascii_case("rel")
                    && p.val.as_deref().is_some_and(|r| {
                        r.split_ascii_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("next"))
                    })
            });
            if is_next {
                return base
                    .join(link.url)
                    .map(Some)
                    .map_err(|e| format!("the Link header's next target is not a URL ({e})"));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next_is_found_and_resolved() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            r#"<https://a.test/x?page=1>; rel="prev", </x?page=3>; rel="next""#
                .parse()
                .unwrap(),
        );
        let base = Url::parse("https://a.test/x?page=2").unwrap();
        assert_eq!(
            link_next(&h, &base).unwrap().unwrap().as_str(),
            "https://a.test/x?page=3"
        );
        assert_eq!(link_next(&HeaderMap::new(), &base), Ok(None));
    }

    #[test]
    fn link_header_next_with_a_comma_in_its_url_is_followed_whole() {
        let base = Url::parse("https://a.test/items").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            r#"</items?ids=1,2,3&after=x;y>; rel="next", </items?first>; rel="first""#
                .parse()
                .unwrap(),
        );
        assert_eq!(
            link_next(&h, &base).unwrap().unwrap().as_str(),
            "https://a.test/items?ids=1,2,3&after=x;y"
        );
        // rel may list several relation types; case does not matter.
        h.insert(
            reqwest::header::LINK,
            r#"<https://a.test/p/2>; rel="last NEXT""#.parse().unwrap(),
        );
        assert_eq!(
            link_next(&h, &base).unwrap().unwrap().as_str(),
            "https://a.test/p/2"
        );
    }

    #[test]
    fn h2_a_garbage_link_header_is_an_error_not_the_last_page() {
        let base = Url::parse("https://a.test/items").unwrap();
        for garbage in ["next page please", "<https://a.test/2; rel=next", "<>; rel"] {
            let mut h = HeaderMap::new();
            h.insert(reqwest::header::LINK, garbage.parse().unwrap());
            let r = link_next(&h, &base);
            assert!(r.is_err() || r == Ok(None), "{garbage}: {r:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::LINK, "next page please".parse().unwrap());
        assert!(link_next(&h, &base).unwrap_err().contains("not RFC 8288"));
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            reqwest::header::HeaderValue::from_bytes(b"<\xff>; rel=next").unwrap(),
        );
        assert!(link_next(&h, &base).unwrap_err().contains("not ASCII"));
    }

    #[test]
    fn records_path_must_hold_an_array() {
        let raw = |t: &str| RawValue::from_string(t.to_string()).unwrap();
        let take = |t: &str, path: &str, url: &str| take_records(&Fields::of(&raw(t)), path, url);
        let err = take(r#"{"data": {"a": 1}}"#, "data", "/v1/x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed response from /v1/x: 'data' should be an array of records, got an object"
        );
        let err = take(r#"{"data": null}"#, "data", "/v1/x").unwrap_err();
        assert!(err.to_string().ends_with("got null"), "{err}");
        let err = take("{}", "data", "/v1/x").unwrap_err();
        assert!(err.to_string().contains("missing"));
        let err = take(r#"{"page": 7}"#, "page.data", "/v1/x").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let nested = take(r#"{"r": {"items": [{"id": 1}, 2]}}"#, "r.items", "/").unwrap();
        assert_eq!(
            nested.iter().map(Record::text).collect::<Vec<_>>(),
            [r#"{"id": 1}"#, "2"]
        );
        assert_eq!(take("[1, 2]", "", "/").unwrap().len(), 2);
    }

    /// A provider on 127.0.0.1 answering every request from `answer(path)`, keeping each
    /// request's head (lower-cased) for the test to read.
    async fn provider(answer: fn(&str) -> String) -> (Url, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_lowercase();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                s.lock().unwrap().push(head);
                let body = answer(path.split('?').next().unwrap_or(""));
                let out = format!(
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(out.as_bytes()).await;
            }
        });
        (base, seen)
    }

    fn connector(spec: &str, base: Url) -> Connector {
        use crate::secrets::{MemorySecretStore, Secret, SecretKind, SecretStore};
        let secrets = Arc::new(MemorySecretStore::default());
        secrets
            .set("c1", SecretKind::ApiKey, &Secret::new("key_0123456789"))
            .unwrap();
        let auth = Auth::new(
            AuthConfig {
                connection_id: "c1".into(),
                connection_name: "c".into(),
                kind: crate::model::AuthKind::ApiKey,
                token_url: None,
                client_id: None,
                scope: None,
                api_key_header: None,
                api_key_query: None,
                token_expires_at: None,
            },
            secrets,
        )
        .unwrap();
        let clock = Arc::new(crate::clock::ManualClock::new(
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        Connector::new(
            reqwest::Client::new(),
            base,
            Arc::new(ConnectorSpec::parse(spec).unwrap()),
            Arc::new(auth),
            clock,
            Arc::new(|_| {}),
        )
    }

    fn policy() -> RequestPolicy {
        RequestPolicy {
            backoff: crate::policy::Backoff::default(),
            request_timeout: Duration::from_secs(10),
            max_rate_limit_waits: 3,
            deadline: DateTime::<Utc>::MAX_UTC,
        }
    }

    const TENANT_SPEC: &str = r#"
name = "Xero-like"
[auth]
kind = "api_key"
[values.tenant_id]
label = "Xero organisation"
choices = { path = "/connections", records = "", value = "tenantId", label = "tenantName" }
[request]
headers = { "xero-tenant-id" = "{values.tenant_id}" }
[entities.contacts]
path = "/Contacts"
records = "Contacts"
id = "ContactID"
query = { where = "Org==\"{values.tenant_id}\"" }
pagination = { style = "none" }
"#;

    #[tokio::test]
    async fn i15_connection_values_fill_request_and_entity_extras_and_choices_are_listed() {
        let (base, seen) = provider(|path| match path {
            "/connections" => r#"[{"tenantId":"t-1","tenantName":"Acme Ltd"},{"tenantId":"t-2","tenantName":"Beta"},{"nope":1}]"#.into(),
            _ => r#"{"Contacts":[{"ContactID":"c1"}]}"#.into(),
        })
        .await;
        let values = [("tenant_id".to_string(), "t-1".to_string())].into();
        let c = connector(TENANT_SPEC, base).with_values(values);
        let (mut stats, cancel) = (RequestStats::default(), CancellationToken::new());
        let choices = c
            .list_choices("tenant_id", &policy(), &mut stats, &cancel)
            .await
            .unwrap();
        assert_eq!(
            choices,
            [
                Choice {
                    value: "t-1".into(),
                    label: "Acme Ltd".into()
                },
                Choice {
                    value: "t-2".into(),
                    label: "Beta".into()
                }
            ]
        );
        let mut pager = c.pager("contacts", None, 100).unwrap();
        let page = pager
            .next_page(&c, &policy(), &mut stats, &cancel)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.records.len(), 1);
        let heads = seen.lock().unwrap().clone();
        assert!(heads[0].starts_with("get /connections "), "{}", heads[0]);
        assert!(
            !heads[0].contains("xero-tenant-id"),
            "choices are listed before a value is chosen: {}",
            heads[0]
        );
        assert!(heads[0].contains("x-api-key: key_0123456789"));
        assert!(
            heads[1].starts_with("get /contacts?where=org%3d%3d%22t-1%22 "),
            "{}",
            heads[1]
        );
        assert!(heads[1].contains("xero-tenant-id: t-1"), "{}", heads[1]);
        assert!(heads[1].contains("x-api-key: key_0123456789"));

        // Without the value: a configuration error naming it, before any request.
        let c = connector(TENANT_SPEC, Url::parse("http://127.0.0.1:9/").unwrap());
        let e = c.pager("contacts", None, 100).unwrap_err();
        assert_eq!(e.field(), Some("values.tenant_id"));
        assert!(e.to_string().contains("no Xero organisation set"), "{e}");
    }

    #[test]
    fn i15_changes_requests_carry_the_watermark_where_and_how_the_spec_says() {
        let spec = |pagination: &str, send: &str| {
            format!(
                r#"
name = "p"
[auth]
kind = "api_key"
[request]
query = {{ v = "2" }}
[entities.items]
path = "/items"
query = {{ fields = "all" }}
pagination = {pagination}
[entities.items.incremental]
path = "/items/search"
method = "POST"
body = {{ filter = {{ after = "{{since}}", kind = ["a", "{{since}}"] }} }}
field = "modified"
send = {send}
"#
            )
        };
        let base = Url::parse("https://api.test/v1/").unwrap();
        let w = "2026-12-02T18:00:05.250Z";
        let c = connector(
            &spec(
                r#"{ style = "offset", offset_param = "skip", limit_param = "take" }"#,
                r#"{ in = "body", format = "date" }"#,
            ),
            base.clone(),
        );
        let pager = c.pager("items", Some(w), 25).unwrap();
        let first = pager.call(&c, &Next::Start).unwrap();
        assert_eq!(first.method, reqwest::Method::POST);
        assert_eq!(
            first.url.as_str(),
            "https://api.test/v1/items/search?v=2",
            "the entity's list query is not the search's"
        );
        let body: Value = serde_json::from_slice(first.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"filter": {"after": "2026-12-02", "kind": ["a", "2026-12-02"]}, "skip": 0, "take": 25})
        );
        let third = pager.call(&c, &Next::Offset(50)).unwrap();
        let body: Value = serde_json::from_slice(third.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            (body["skip"].clone(), body["take"].clone()),
            (50.into(), 25.into())
        );
        // Without a watermark: the entity's list, a GET with its own query.
        let list = c
            .pager("items", None, 25)
            .unwrap()
            .call(&c, &Next::Start)
            .unwrap();
        assert_eq!(list.method, reqwest::Method::GET);
        assert_eq!(
            list.url.as_str(),
            "https://api.test/v1/items?v=2&fields=all&skip=0&take=25"
        );
        assert!(list.body.is_none());

        // In a header, as an HTTP date; numbered pages into a POST body too.
        let c = connector(
            &spec(
                r#"{ style = "page", page_param = "p", page_size = 50 }"#,
                r#"{ in = "header", name = "If-Modified-Since", format = "http_date" }"#,
            )
            .replace("after = \"{since}\", ", ""),
            base.clone(),
        );
        let call = c
            .pager("items", Some(w), 25)
            .unwrap()
            .call(&c, &Next::Page(3))
            .unwrap();
        assert_eq!(
            call.headers["if-modified-since"],
            "Wed, 02 Dec 2026 18:00:05 GMT"
        );
        let body: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["p"], 3);
        assert!(
            body.get("per_page").is_none(),
            "a fixed page size is not asked for"
        );

        // In the query, as unix milliseconds, after the paging parameters.
        let c = connector(
            &spec(
                r#"{ style = "cursor" }"#,
                r#"{ in = "query", name = "updated[gt]", format = "unix_ms" }"#,
            )
            .replace("method = \"POST\"\n", "")
            .replace(
                "body = { filter = { after = \"{since}\", kind = [\"a\", \"{since}\"] } }\n",
                "",
            ),
            base,
        );
        let call = c
            .pager("items", Some(w), 25)
            .unwrap()
            .call(&c, &Next::Cursor("it_9".into()))
            .unwrap();
        assert_eq!(
            call.url.query(),
            Some("v=2&limit=25&starting_after=it_9&updated%5Bgt%5D=1796234405250")
        );
        assert!(call.body.is_none());
    }

    /// The first request of each catalog entity, full and incremental, as the providers
    /// document them.
    #[test]
    fn i15_catalog_first_requests_are_the_providers_shapes() {
        let w = "2026-12-02T18:00:05.250Z";
        let first = |c: &Connector, entity: &str, since: Option<&str>| {
            let pager = c.pager(entity, since, 100).unwrap();
            pager.call(c, &Next::Start).unwrap()
        };
        let catalog = |name: &str| match name {
            "stripe" => include_str!("../../catalog/stripe.toml"),
            "xero" => include_str!("../../catalog/xero.toml"),
            _ => include_str!("../../catalog/hubspot.toml"),
        };

        let stripe = connector(
            catalog("stripe"),
            Url::parse("https://api.stripe.com").unwrap(),
        );
        for entity in ["customers", "products", "invoices", "charges"] {
            let full = first(&stripe, entity, None);
            assert_eq!(
                full.url.as_str(),
                format!("https://api.stripe.com/v1/{entity}?limit=100")
            );
            let inc = first(&stripe, entity, Some(w));
            let kind = entity.trim_end_matches('s');
            assert_eq!(
                inc.url.as_str(),
                format!("https://api.stripe.com/v1/events?type={kind}.*&limit=100&created%5Bgte%5D=1796234405")
            );
            assert_eq!(inc.method, reqwest::Method::GET);
        }

        let values = [("tenant_id".to_string(), "t-1".to_string())].into();
        let xero = connector(catalog("xero"), Url::parse("https://api.xero.com").unwrap())
            .with_values(values);
        let full = first(&xero, "invoices", None);
        assert_eq!(
            full.url.as_str(),
            "https://api.xero.com/api.xro/2.0/Invoices?where=Type%3D%3D%22ACCREC%22&page=1"
        );
        assert_eq!(full.headers["xero-tenant-id"], "t-1");
        assert_eq!(full.headers["accept"], "application/json");
        let inc = first(&xero, "items", Some(w));
        assert_eq!(inc.url.as_str(), "https://api.xero.com/api.xro/2.0/Items");
        assert_eq!(inc.headers["if-modified-since"], w);
        assert_eq!(inc.headers["xero-tenant-id"], "t-1");

        let hubspot = connector(
            catalog("hubspot"),
            Url::parse("https://api.hubapi.com").unwrap(),
        );
        let full = first(&hubspot, "deals", None);
        assert_eq!(
            full.url.as_str(),
            "https://api.hubapi.com/crm/v3/objects/deals?archived=false&properties=dealname%2Camount%2Cdealstage%2Cclosedate%2Cpipeline&limit=100"
        );
        let inc = first(&hubspot, "contacts", Some(w));
        assert_eq!(inc.method, reqwest::Method::POST);
        assert_eq!(
            inc.url.as_str(),
            "https://api.hubapi.com/crm/v3/objects/contacts/search"
        );
        let body: Value = serde_json::from_slice(inc.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body["filterGroups"][0]["filters"][0]["value"],
            "1796234405250"
        );
        assert_eq!(body["limit"], 100);
        assert_eq!(body["properties"][0], "email");
    }
}
