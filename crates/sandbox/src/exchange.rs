//! The exchange log: every request a sandbox answered (admin endpoints aside) with its
//! response, credentials redacted, kept in memory (capped) and optionally appended to a JSONL
//! file, so contract tests can check what a client sent and what the sandbox served against a
//! provider's published API description.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::{lock, Shared};
use crate::util::parse_form;

/// Exchanges kept in memory; older ones are dropped first (the file keeps everything).
pub(crate) const CAPACITY: usize = 10_000;

/// Bodies larger than this are not buffered for the log (the sandbox never serves such).
const BODY_LIMIT: usize = 64 << 20;

/// What a credential is replaced with.
const REDACTED: &str = "redacted";

/// One request and the response the sandbox gave, as written to the log.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The query string exactly as received (still percent-encoded), `""` if there was none.
    pub query: String,
    /// Header names in lower case; credential values replaced by `"redacted"` after their
    /// scheme word (`"Bearer redacted"`). Repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; a form body as an object of its fields (secret fields redacted); other
    /// text as a string; `null` when empty.
    pub body: Value,
    pub status: u16,
    pub response_headers: BTreeMap<String, String>,
    /// As `body`; tokens in token responses are redacted.
    pub response_body: Value,
}

/// The in-memory log and the optional JSONL file.
#[derive(Debug)]
pub(crate) struct ExchangeLog {
    entries: Mutex<VecDeque<Exchange>>,
    file: Option<Mutex<BufWriter<File>>>,
}

impl ExchangeLog {
    pub(crate) fn new(record: Option<&Path>) -> io::Result<Self> {
        let file = match record {
            Some(path) => Some(Mutex::new(BufWriter::new(File::create(path)?))),
            None => None,
        };
        Ok(ExchangeLog {
            entries: Mutex::new(VecDeque::new()),
            file,
        })
    }

    pub(crate) fn push(&self, exchange: Exchange) {
        if let Some(file) = &self.file {
            let mut file = lock(file);
            // The log is a test aid: a full disk must not fail the request being logged.
            let written = serde_json::to_writer(&mut *file, &exchange)
                .map_err(io::Error::from)
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.flush());
            if let Err(err) = written {
                tracing::warn!(%err, "cannot append to the exchange log file");
            }
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(exchange);
    }

    pub(crate) fn snapshot(&self) -> Vec<Exchange> {
        lock(&self.entries).iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Request form fields and response fields that hold secrets.
const SECRET_FIELDS: [&str; 8] = [
    "client_secret",
    "refresh_token",
    "access_token",
    "id_token",
    "code",
    "code_verifier",
    "password",
    "client_assertion",
];

/// Query parameters that may carry a credential.
const SECRET_PARAMS: [&str; 5] = ["api_key", "apikey", "hapikey", "access_token", "code"];

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str().to_ascii_lowercase();
        let raw = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let value = redact_header(&name, &raw);
        out.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

fn redact_header(name: &str, value: &str) -> String {
    match name {
        "authorization" | "proxy-authorization" => match value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} {REDACTED}"),
            None => REDACTED.to_owned(),
        },
        "x-api-key" | "cookie" | "set-cookie" => REDACTED.to_owned(),
        // A sign-in redirect carries the authorization code in its query.
        "location" => redact_query(value),
        _ => value.to_owned(),
    }
}

/// Replaces the values of credential-carrying query parameters in a URL or query string.
fn redact_query(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (Some(h), q),
        None if url.contains('=') => (None, url),
        None => return url.to_owned(),
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => format!("{k}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    match head {
        Some(h) => format!("{h}?{query}"),
        None => query,
    }
}

fn redact_fields(value: &mut Value) {
    if let Value::Object(map) = value {
        for (key, v) in map.iter_mut() {
            if SECRET_FIELDS.contains(&key.as_str()) && v.is_string() {
                *v = Value::String(REDACTED.to_owned());
            }
        }
    }
}

/// A body as the log shows it (see [`Exchange::body`]).
fn body_value(bytes: &[u8], headers: &HeaderMap) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    let mut value = if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        v
    } else {
        let text = String::from_utf8_lossy(bytes);
        let form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if form {
            Value::Object(
                parse_form(&text)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )
        } else {
            Value::String(text.into_owned())
        }
    };
    redact_fields(&mut value);
    value
}

/// Middleware over every route but `/_admin`: records the exchange when the log is on.
pub(crate) async fn record(State(sh): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let Some(log) = sh.exchanges.as_ref() else {
        return next.run(req).await;
    };
    if req.uri().path().starts_with("/_admin") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    let mut exchange = Exchange {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: header_map(&parts.headers),
        body: body_value(&bytes, &parts.headers),
        ..Exchange::default()
    };
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = resp.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    exchange.status = parts.status.as_u16();
    exchange.response_headers = header_map(&parts.headers);
    exchange.response_body = body_value(&bytes, &parts.headers);
    log.push(exchange);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_keeping_the_scheme() {
        assert_eq!(
            redact_header("authorization", "Bearer at_123"),
            "Bearer redacted"
        );
        assert_eq!(redact_header("authorization", "opaque"), "redacted");
        assert_eq!(redact_header("x-api-key", "k"), "redacted");
        assert_eq!(
            redact_header("location", "http://127.0.0.1:9/cb?code=ac_1&state=s"),
            "http://127.0.0.1:9/cb?code=redacted&state=s"
        );
        assert_eq!(
            redact_header("accept", "application/json"),
            "application/json"
        );
    }

    #[test]
    fn form_and_json_bodies_lose_their_secrets() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let form = body_value(
            b"grant_type=refresh_token&refresh_token=rt_1&client_id=c&client_secret=s",
            &headers,
        );
        assert_eq!(
            form,
            serde_json::json!({"grant_type": "refresh_token", "refresh_token": "redacted",
                "client_id": "c", "client_secret": "redacted"})
        );
        let json = body_value(
            br#"{"access_token":"at","expires_in":3600}"#,
            &HeaderMap::new(),
        );
        assert_eq!(
            json,
            serde_json::json!({"access_token": "redacted", "expires_in": 3600})
        );
        assert_eq!(body_value(b"", &HeaderMap::new()), Value::Null);
        assert_eq!(body_value(b"{\"a\":", &HeaderMap::new()), "{\"a\":");
    }
}
