//! The generic REST connector: sends requests under the request policy (R-E1–R-E3), walks
//! pages in every supported pagination style, and fetches single records by id.

pub mod auth;
pub mod signin;
pub mod spec;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
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
}

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

/// Up to 200 characters of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

enum Attempt {
    Done(reqwest::Response),
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
        }
    }

    pub fn spec(&self) -> &ConnectorSpec {
        &self.spec
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::invalid("path", format!("'{path}': {e}")))
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
        let until =
            self.clock.now() + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        if until > policy.deadline {
            return Err(Error::TimedOut(format!(
                "{why}: waiting {}s would pass the execution timeout",
                d.as_secs()
            )));
        }
        tokio::select! {
            _ = cancel.cancelled() => Err(Error::Cancelled),
            _ = self.clock.sleep(d) => Ok(()),
        }
    }

    /// GET `url` under the request policy and return the successful response.
    pub async fn get(
        &self,
        url: &Url,
        policy: &RequestPolicy,
        stats: &mut RequestStats,
        cancel: &CancellationToken,
    ) -> Result<(reqwest::Response, HeaderMap)> {
        let path = url.path().to_string();
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
                Err(Error::ProviderUnavailable { detail, .. }) => {
                    // The token endpoint being down is the provider being down (R-E2).
                    self.backoff(&mut retries, detail, policy, stats, cancel)
                        .await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(t) = times {
                (self.on_tokens)(t);
            }
            let remaining = (policy.deadline - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            let deadline_bound = remaining < policy.request_timeout;
            let mut req = self
                .http
                .get(url.clone())
                .timeout(remaining.min(policy.request_timeout));
            if let Some((k, v)) = cred.header {
                req = req.header(k, v);
            }
            let sent = tokio::select! {
                _ = cancel.cancelled() => return Err(Error::Cancelled),
                r = req.send() => r,
            };
            let attempt = match sent {
                Err(e) if e.is_timeout() && deadline_bound => {
                    return Err(Error::TimedOut(format!(
                        "the execution timeout passed while waiting for {path}"
                    )));
                }
                Err(e) => Attempt::Retry(reqwest_gist(&e)),
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        Attempt::Done(resp)
                    } else if status == StatusCode::UNAUTHORIZED {
                        if refreshed {
                            return Err(Error::AuthExpired {
                                detail: format!(
                                    "{path} still answers HTTP 401 after a token refresh"
                                ),
                            });
                        }
                        refreshed = true;
                        if let Some(t) = self
                            .auth
                            .refresh(cred.generation, &self.http, self.clock.as_ref())
                            .await?
                        {
                            (self.on_tokens)(t);
                        }
                        continue;
                    } else if status == StatusCode::TOO_MANY_REQUESTS {
                        rate_waits += 1;
                        stats.rate_limit_waits += 1;
                        if rate_waits > policy.max_rate_limit_waits {
                            return Err(Error::RateLimited {
                                detail: format!("{path} answered 429 {rate_waits} times in a row"),
                            });
                        }
                        let header = resp
                            .headers()
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok());
                        let wait = header
                            .and_then(|h| parse_retry_after(h, self.clock.now()))
                            .unwrap_or_else(|| {
                                let i = (rate_waits - 1)
                                    .min(policy.backoff.retries().saturating_sub(1));
                                policy.backoff.delay(i).unwrap_or(Duration::from_secs(1))
                            });
                        tracing::info!(
                            path,
                            wait_secs = wait.as_secs(),
                            "rate limited (429); pausing"
                        );
                        self.wait(wait, policy, cancel, "rate limited (HTTP 429)")
                            .await?;
                        continue;
                    } else if status.is_server_error() {
                        stats.server_errors += 1;
                        Attempt::Retry(format!("HTTP {} from {path}", status.as_u16()))
                    } else {
                        let body = resp.bytes().await.unwrap_or_default();
                        return Err(Error::ProviderRejected {
                            status: status.as_u16(),
                            path,
                            excerpt: excerpt(&body),
                        });
                    }
                }
            };
            match attempt {
                Attempt::Done(resp) => {
                    let headers = resp.headers().clone();
                    return Ok((resp, headers));
                }
                Attempt::Retry(detail) => {
                    self.backoff(&mut retries, detail, policy, stats, cancel)
                        .await?
                }
            }
        }
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
        self.wait(d, policy, cancel, &detail).await
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
        let (resp, headers) = self.get(url, policy, stats, cancel).await?;
        let body = tokio::select! {
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            b = resp.bytes() => b.map_err(|e| Error::ProviderUnavailable { attempts: 1, detail: reqwest_gist(&e) })?,
        };
        let not_json = |e: serde_json::Error| Error::MalformedResponse {
            path: url.path().to_string(),
            detail: format!("not valid JSON ({e}); body starts: {}", excerpt(&body)),
        };
        let value = read_json(&body).map_err(not_json)?;
        let header = |names: &[&str]| {
            names.iter().find_map(|n| {
                headers
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            })
        };
        if let Some(wait) = pace_from_headers(
            header(&["x-ratelimit-remaining", "ratelimit-remaining"]).as_deref(),
            header(&["x-ratelimit-reset", "ratelimit-reset"]).as_deref(),
            self.clock.now(),
        ) {
            stats.rate_limit_waits += 1;
            self.wait(wait, policy, cancel, "pacing to the provider's rate limit")
                .await?;
        }
        Ok((value, headers))
    }

    /// Start walking an entity's records.
    pub fn pager(&self, entity: &str, since: Option<&str>, page_size: u32) -> Result<Pager> {
        let spec = self.spec.entity(entity)?.clone();
        let first = self.url(&spec.path)?;
        let since = match (&spec.incremental_param, since) {
            (Some(p), Some(s)) => Some((p.clone(), s.to_string())),
            _ => None,
        };
        Ok(Pager {
            spec,
            next: Some(Next::Start(first)),
            since,
            page_size,
            number: 0,
        })
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
        let url = self.url(&get.replace("{id}", &encoded))?;
        match self.get_json(&url, policy, stats, cancel).await {
            Ok((v, _)) => Ok(Some(Record::new(v))),
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
    Start(Url),
    Cursor(String),
    Page(u64),
    Offset(u64),
    Url(Url),
}

/// One fetched page.
#[derive(Debug)]
pub struct FetchedPage {
    pub records: Vec<Record>,
    /// 1-based page number within the execution.
    pub number: u64,
    /// Where the page started, for "batch in progress" notes.
    pub position: String,
}

/// Walks an entity's pages.
#[derive(Debug)]
pub struct Pager {
    spec: EntitySpec,
    next: Option<Next>,
    since: Option<(String, String)>,
    page_size: u32,
    number: u64,
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

    fn base_url(&self, connector: &Connector) -> Result<Url> {
        connector.url(&self.spec.path)
    }

    /// Fetch the next page, or `None` after the last.
    pub async fn next_page(
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
        let size = self.page_size.to_string();
        let mut url = match &next {
            Next::Url(u) => u.clone(),
            Next::Start(u) => u.clone(),
            _ => self.base_url(connector)?,
        };
        if !matches!(next, Next::Url(_)) {
            let mut q = url.query_pairs_mut();
            match &self.spec.pagination {
                Pagination::None => {}
                Pagination::Cursor {
                    limit_param,
                    cursor_param,
                    ..
                } => {
                    q.append_pair(limit_param, &size);
                    if let Next::Cursor(c) = &next {
                        q.append_pair(cursor_param, c);
                    }
                }
                Pagination::NextCursor {
                    limit_param,
                    cursor_param,
                    ..
                } => {
                    q.append_pair(limit_param, &size);
                    if let Next::Cursor(c) = &next {
                        q.append_pair(cursor_param, c);
                    }
                }
                Pagination::Page {
                    page_param,
                    size_param,
                    first_page,
                } => {
                    let p = match &next {
                        Next::Page(p) => *p,
                        _ => *first_page,
                    };
                    q.append_pair(page_param, &p.to_string());
                    q.append_pair(size_param, &size);
                }
                Pagination::Offset {
                    offset_param,
                    limit_param,
                } => {
                    let o = match &next {
                        Next::Offset(o) => *o,
                        _ => 0,
                    };
                    q.append_pair(offset_param, &o.to_string());
                    q.append_pair(limit_param, &size);
                }
                Pagination::Link { limit_param } => {
                    q.append_pair(limit_param, &size);
                }
            }
            if let Some((param, since)) = &self.since {
                q.append_pair(param, since);
            }
        }
        let (body, headers) = connector.get_json(&url, policy, stats, cancel).await?;
        let path = url.path().to_string();
        // The body's top level is read once, for the records and for the paging fields.
        let top = Fields::of(&body);
        let records = take_records(&top, &self.spec.records, &path)?;
        self.number += 1;
        let n = records.len() as u64;
        let full = n >= u64::from(self.page_size);
        self.next = match &self.spec.pagination {
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
                match records.last() {
                    Some(last) if more => Some(Next::Cursor(record_id(
                        &last.fields(),
                        &self.spec.id,
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
            Pagination::Page { first_page, .. } => full.then(|| {
                let current = match next {
                    Next::Page(p) => p,
                    _ => *first_page,
                };
                Next::Page(current + 1)
            }),
            Pagination::Offset { .. } => full.then(|| {
                let current = match next {
                    Next::Offset(o) => o,
                    _ => 0,
                };
                Next::Offset(current + n)
            }),
            Pagination::Link { .. } => match link_next(&headers, &url) {
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
            },
        };
        Ok(Some(FetchedPage {
            records,
            number: self.number,
            position,
        }))
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

/// Parse `Link: <url>; rel="next"` (RFC 8288), resolving relative references.
fn link_next(headers: &HeaderMap, base: &Url) -> Option<Url> {
    for value in headers.get_all(reqwest::header::LINK) {
        let value = value.to_str().ok()?;
        for part in value.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next()?.trim();
            let target = target.strip_prefix('<')?.strip_suffix('>')?;
            let is_next = pieces.any(|p| {
                let p = p.trim();
                p.strip_prefix("rel=")
                    .map(|r| {
                        r.trim_matches('"')
                            .split_whitespace()
                            .any(|r| r.eq_ignore_ascii_case("next"))
                    })
                    .unwrap_or(false)
            });
            if is_next {
                return base.join(target).ok();
            }
        }
    }
    None
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
            link_next(&h, &base).unwrap().as_str(),
            "https://a.test/x?page=3"
        );
        assert_eq!(link_next(&HeaderMap::new(), &base), None);
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
}
