//! Hostile and broken providers (issue 13: S1–S3, S5, H1, H2, P4, token endpoint
//! classification). Each case starts its own raw HTTP/1.1 server on 127.0.0.1:0 — raw, so
//! it can send what no well-behaved framework would: endless or stalled bodies, non-UTF-8
//! headers, self-links, cross-origin redirects — and drives a real run through the
//! [`Engine`] on a [`ManualClock`], so backoff and Retry-After waits are instant. A second
//! server stands for "another origin" and counts every request that reaches it.
//!
//! | case | provider does | expected outcome |
//! |---|---|---|
//! | `h1_endless_body_*` | streams a body forever | failed / malformed: "response larger than 1 MB" |
//! | `h1_a_stalled_body_*` | sends part of a body, then nothing | failed / provider unavailable ("timed out"), cut by the request timeout |
//! | `h1_huge_page_*` | 400,000 records for `limit=100` | failed / malformed: "holds 400000 records" |
//! | `h2_repeating_cursor_*` | `has_more` forever, same last id | failed / malformed: "the cursor 'b' … same page" |
//! | `h2_same_next_cursor_*` | the same `next_cursor` forever | failed / malformed: "does not advance" |
//! | `h2_link_to_itself_*` | `Link: <same URL>; rel="next"` | failed / malformed: "the next link … same page" |
//! | `h2_always_full_numbered_pages_*` | the same full page for every `page=` | failed / malformed: "returned the same 10 ids" |
//! | `h2_link_with_a_comma_*` | next URL holding a comma | completed, every page fetched |
//! | `h2_garbage_link_header_*` | `Link: next page please` | failed / malformed: "not RFC 8288 links" |
//! | `s2_cross_origin_redirect_on_list_*` | 302 to another origin | failed / malformed naming the origin; other origin: 0 requests |
//! | `s2_same_origin_redirects_*` | 302 within the origin; then a loop | followed and completed; a loop fails after 5 |
//! | `s3_cross_origin_307_on_token_*` | token endpoint 307 to another origin | failed / malformed; other origin: 0 requests; connection stays active |
//! | `s5_error_body_echoing_*` | 400 echoing every request header | failed / rejected; note, alerts and database hold no credential |
//! | `s1_path_as_url_*` | spec path `/http://other/x` | refused at load; a stored one still reaches only the base origin |
//! | `s5_token_url_*` | token URL elsewhere / `file://` / userinfo | connection refused with the field named |
//! | `p4_bad_headers_*` | non-UTF-8 `Retry-After` | the backoff schedule is used; completed |
//! | `p4_absurd_retry_after_*` | `Retry-After: 100000000000000` | timed out, no panic |
//! | `p4_absurd_expires_in_*` | `expires_in: i64::MAX` | completed; expiry one year out |
//! | `token_429_and_5xx_*` | token endpoint 429, 503 then fine | completed; connection active |
//! | `token_5xx_during_a_refresh_*` | 401, then the refresh gets a 503 | retried; completed |
//! | `token_down_*` | token endpoint 503 always | failed / provider unavailable; connection active |
//! | `token_refusals_*` | `invalid_grant` / `invalid_request` | auth, expired / rejected, active |
//! | `secrets_are_read_from_the_keychain_once_*` | 20 pages; many refreshes | one keychain read of the API key / client secret |
//! | `token_requests_follow_lifetime` | 2 s tokens | one grant per ~1.8 s of run time, not one per page |
//!
//! Every case also checks that no execution of the job is left `running`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use syncdesk_engine::{
    ConnectionStatus, ConnectorSpec, Engine, EngineOptions, Execution, ExecutionStatus,
    FailureKind, Job, ManualClock, MemorySecretStore, NewConnection, NewJob, PageRequest,
    RunOptions, Secret, SecretKind, SecretStore,
};

// ---- a provider that does what it is told ---------------------------------------------------

/// A request as the provider saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    /// Header names lower-cased; values as sent.
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn query(&self) -> HashMap<String, String> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Body {
    Bytes(Vec<u8>),
    /// A JSON array that never ends.
    Endless,
    /// Promises 1,000 bytes, sends 10, then nothing.
    Stall,
}

struct Resp {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
}

impl Resp {
    fn json(status: u16, body: impl Into<String>) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: Body::Bytes(body.into().into_bytes()),
        }
    }
    fn ok(body: impl Into<String>) -> Resp {
        Resp::json(200, body)
    }
    fn header(mut self, k: &str, v: impl AsRef<[u8]>) -> Resp {
        self.headers.push((k.into(), v.as_ref().to_vec()));
        self
    }
    fn redirect(status: u16, to: &str) -> Resp {
        Resp::json(status, "").header("location", to)
    }
}

type Handler = Arc<dyn Fn(&Req, u64) -> Resp + Send + Sync>;

/// One provider on 127.0.0.1: every request it got, and how many.
struct Provider {
    addr: SocketAddr,
    hits: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl Provider {
    async fn start(handler: impl Fn(&Req, u64) -> Resp + Send + Sync + 'static) -> Provider {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let (h, s) = (hits.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (handler, hits, seen) = (handler.clone(), h.clone(), s.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, handler, hits, seen).await;
                });
            }
        });
        Provider { addr, hits, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    handler: Handler,
    hits: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<Req>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let req = Req {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    };
    let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
    seen.lock().unwrap().push(req.clone());
    let resp = handler(&req, n);
    let mut out = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", resp.status).into_bytes();
    for (k, v) in &resp.headers {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    match resp.body {
        Body::Bytes(b) => {
            out.extend_from_slice(format!("content-length: {}\r\n\r\n", b.len()).as_bytes());
            out.extend_from_slice(&b);
            stream.write_all(&out).await?;
        }
        Body::Endless => {
            out.extend_from_slice(b"\r\n[");
            stream.write_all(&out).await?;
            let piece = "{\"id\":\"x\"},".repeat(6000);
            loop {
                stream.write_all(piece.as_bytes()).await?;
            }
        }
        Body::Stall => {
            out.extend_from_slice(b"content-length: 1000\r\n\r\n{\"data\":[");
            stream.write_all(&out).await?;
            stream.flush().await?;
            // Hold the connection open, sending nothing, until the client gives up.
            let mut sink = [0u8; 64];
            while stream.read(&mut sink).await? > 0 {}
        }
    }
    stream.flush().await?;
    Ok(())
}

// ---- an engine on a manual clock ------------------------------------------------------------

const API_KEY: &str = "key_S3CRET_api_0123456789";
const CLIENT_SECRET: &str = "cs_S3CRET_client_0123456789";
/// The access token every token endpoint here issues.
const ACCESS_TOKEN: &str = "at_S3CRET_token_0123456789";

struct H {
    engine: Engine,
    clock: Arc<ManualClock>,
    dir: tempfile::TempDir,
}

/// Secrets in memory, counting how often each kind is read.
#[derive(Debug, Default)]
struct CountingSecrets {
    inner: MemorySecretStore,
    reads: Mutex<HashMap<&'static str, u64>>,
}

impl SecretStore for CountingSecrets {
    fn get(&self, id: &str, kind: SecretKind) -> syncdesk_engine::Result<Option<Secret>> {
        *self.reads.lock().unwrap().entry(kind.as_str()).or_default() += 1;
        self.inner.get(id, kind)
    }
    fn set(&self, id: &str, kind: SecretKind, value: &Secret) -> syncdesk_engine::Result<()> {
        self.inner.set(id, kind, value)
    }
    fn delete(&self, id: &str, kind: SecretKind) -> syncdesk_engine::Result<()> {
        self.inner.delete(id, kind)
    }
}

async fn engine() -> H {
    engine_with(Arc::new(MemorySecretStore::default())).await
}

async fn engine_with(secrets: Arc<dyn SecretStore>) -> H {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    ));
    let engine = Engine::open(EngineOptions {
        database: common::database(dir.path()).await,
        secrets,
        clock: clock.clone(),
        actor: "admin@test".into(),
    })
    .await
    .unwrap();
    H { engine, clock, dir }
}

/// A spec for one entity `items` at `/items` with `pagination` and `auth` (TOML bodies).
fn spec(auth: &str, pagination: &str, extra: &str) -> String {
    format!(
        r#"
name = "Hostile"
[auth]
{auth}
[entities.items]
path = "/items"
records = "data"
pagination = {pagination}
mappings = [{{ source = "id", target = "ref" }}]
{extra}
"#
    )
}

const API_KEY_AUTH: &str = r#"kind = "api_key"
header = "X-Api-Key""#;
const OAUTH: &str = r#"kind = "oauth2_client_credentials"
token_url = "/oauth/token""#;
const CURSOR: &str = r#"{ style = "cursor" }"#;

impl H {
    async fn connect(&self, spec: &str, base: &str) -> syncdesk_engine::Result<()> {
        let spec = ConnectorSpec::parse(spec)?;
        let secrets = match spec.auth.kind {
            syncdesk_engine::AuthKind::ApiKey => {
                vec![(SecretKind::ApiKey, Secret::new(API_KEY))]
            }
            _ => vec![(SecretKind::ClientSecret, Secret::new(CLIENT_SECRET))],
        };
        self.engine
            .add_connection_unchecked(NewConnection {
                name: "p".into(),
                spec,
                base_url: Some(base.to_string()),
                client_id: Some("client".into()),
                secrets,
                auth_base_url: None,
                auth_kind: None,
                values: Default::default(),
            })
            .await
            .map(|_| ())
    }

    async fn job(&self, f: impl FnOnce(&mut NewJob)) -> Job {
        let mut j = NewJob {
            name: "items".into(),
            connection: "p".into(),
            entity: "items".into(),
            direction: syncdesk_engine::Direction::Pull,
            mode: syncdesk_engine::Mode::Full,
            schedule: None,
            enabled: true,
            settings: Default::default(),
        };
        j.settings.batch_size = 10;
        f(&mut j);
        self.engine.create_job(j).await.unwrap()
    }

    /// Run the job to its end; the run must not be left `running`, and no credential may
    /// be in its note.
    async fn run(&self, job: &Job) -> Execution {
        let e = self
            .engine
            .run_job(&job.id, RunOptions::default())
            .await
            .unwrap();
        let all = self
            .engine
            .executions(Some(&job.id), &PageRequest::first(100))
            .await
            .unwrap()
            .items;
        assert!(
            all.iter().all(|x| x.status != ExecutionStatus::Running),
            "no execution is left running: {:?}",
            all.iter().map(|x| x.status).collect::<Vec<_>>()
        );
        let note = e.note.clone().unwrap_or_default();
        for s in [API_KEY, CLIENT_SECRET, ACCESS_TOKEN] {
            assert!(!note.contains(s), "a credential in the note: {note}");
        }
        e
    }

    async fn status(&self) -> ConnectionStatus {
        self.engine.connection("p").await.unwrap().status
    }

    /// Every byte the engine wrote to disk (database, WAL), as text.
    fn disk(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
        all
    }
}

fn note(e: &Execution) -> &str {
    e.note.as_deref().unwrap_or("")
}

fn failed(e: &Execution, kind: FailureKind, text: &str) {
    assert_eq!(
        (e.status, e.failure_kind),
        (ExecutionStatus::Failed, Some(kind)),
        "{:?}",
        e.note
    );
    assert!(note(e).contains(text), "expected '{text}' in: {}", note(e));
}

/// `{"data": [ids…]}` plus `extra` top-level members.
fn page(ids: impl IntoIterator<Item = String>, extra: &str) -> String {
    let items: Vec<String> = ids
        .into_iter()
        .map(|i| format!("{{\"id\":\"{i}\"}}"))
        .collect();
    let sep = if extra.is_empty() { "" } else { "," };
    format!("{{\"data\":[{}]{sep}{extra}}}", items.join(","))
}

/// A token endpoint at `/oauth/token` answering with `token`, and `/items` with `items`.
fn oauth_provider(
    token: impl Fn(&Req, u64) -> Resp + Send + Sync + 'static,
    items: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> impl Fn(&Req, u64) -> Resp + Send + Sync + 'static {
    let tokens = AtomicU64::new(0);
    move |r, _| {
        if r.path() == "/oauth/token" {
            let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
            token(r, n)
        } else {
            items(r)
        }
    }
}

fn good_token(expires_in: &str) -> Resp {
    Resp::ok(format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"bearer","expires_in":{expires_in}}}"#
    ))
}

fn one_page(_: &Req) -> Resp {
    Resp::ok(page(["a".into(), "b".into()], r#""has_more":false"#))
}

// ---- H1: bounded input ------------------------------------------------------------------------

#[tokio::test]
async fn h1_endless_body_is_cut_at_the_size_limit() {
    let p = Provider::start(|_, _| Resp {
        status: 200,
        headers: vec![],
        body: Body::Endless,
    })
    .await;
    let h = engine().await;
    h.connect(
        &spec(API_KEY_AUTH, CURSOR, "[limits]\nmax_body_mb = 1"),
        &p.url(),
    )
    .await
    .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(&e, FailureKind::Malformed, "response larger than 1 MB");
    assert_eq!(p.hits(), 1, "a body past the limit is not asked for again");
}

#[tokio::test]
async fn h1_a_stalled_body_is_cut_by_the_request_timeout() {
    let p = Provider::start(|_, _| Resp {
        status: 200,
        headers: vec![],
        body: Body::Stall,
    })
    .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h
        .job(|j| {
            j.settings.request_timeout_secs = 1;
            j.settings.backoff_secs = vec![1];
        })
        .await;
    let started = std::time::Instant::now();
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::ProviderUnavailable,
        "did not arrive in full",
    );
    assert!(note(&e).contains("timed out"), "{}", note(&e));
    assert_eq!(p.hits(), 2, "retried once like any failed request");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn h1_huge_page_for_a_small_limit_is_refused() {
    let p = Provider::start(|r, _| {
        assert_eq!(r.query()["limit"], "100");
        Resp::ok(page(
            (0..400_000).map(|i| i.to_string()),
            r#""has_more":false"#,
        ))
    })
    .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|j| j.settings.batch_size = 100).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        "page 1 holds 400000 records though 100 were asked for; more than 10000",
    );
    assert_eq!(e.counts.processed, 0, "nothing of the page was stored");
}

// ---- H2: pagination that never advances -------------------------------------------------------

#[tokio::test]
async fn h2_repeating_cursor_fails_as_malformed_with_the_cursor() {
    // New records each time, but always ending with "b": the cursor never moves.
    let p =
        Provider::start(|_, n| Resp::ok(page([format!("r{n}"), "b".into()], r#""has_more":true"#)))
            .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        "pagination does not advance: the cursor 'b' for page 3 asks for the same page as page 2",
    );
    assert_eq!(p.hits(), 2, "the repeated request is never sent");
}

#[tokio::test]
async fn h2_same_next_cursor_fails_as_malformed() {
    let p =
        Provider::start(|_, n| Resp::ok(page([format!("r{n}")], r#""next_cursor":"c1""#))).await;
    let h = engine().await;
    h.connect(
        &spec(API_KEY_AUTH, r#"{ style = "next_cursor" }"#, ""),
        &p.url(),
    )
    .await
    .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        "the cursor 'c1' for page 3 asks for the same page as page 2",
    );
    assert_eq!(e.counts.created, 2, "the two real pages were stored");
}

#[tokio::test]
async fn h2_link_to_itself_fails_as_malformed() {
    let p = Provider::start(|r, n| {
        Resp::ok(page([format!("r{n}")], ""))
            .header("link", format!("<{}>; rel=\"next\"", r.target))
    })
    .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, r#"{ style = "link" }"#, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        "the next link for page 2 asks for the same page as page 1",
    );
    assert_eq!(p.hits(), 1);
}

#[tokio::test]
async fn h2_always_full_numbered_pages_fail_as_malformed() {
    let p = Provider::start(|_, _| Resp::ok(page((0..10).map(|i| format!("same{i}")), ""))).await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, r#"{ style = "page" }"#, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        "page 2 returned the same 10 ids as page 1",
    );
    assert_eq!(p.hits(), 2);
}

#[tokio::test]
async fn h2_link_with_a_comma_in_the_next_url_is_followed() {
    let p = Provider::start(|r, _| {
        let q = r.query();
        match q.get("ids").map(String::as_str) {
            None => Resp::ok(page(["a".into()], "")).header(
                "link",
                r#"</items?ids=b,c&limit=10>; rel="next", </items>; rel="first""#,
            ),
            Some("b,c") => Resp::ok(page(["b".into(), "c".into()], "")),
            Some(other) => Resp::json(400, format!("{{\"error\":\"bad ids {other}\"}}")),
        }
    })
    .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, r#"{ style = "link" }"#, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.counts.created, 3, "the page behind the comma was fetched");
}

#[tokio::test]
async fn h2_garbage_link_header_fails_rather_than_completing_short() {
    let p =
        Provider::start(|_, _| Resp::ok(page(["a".into()], "")).header("link", "next page please"))
            .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, r#"{ style = "link" }"#, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        "the Link header is not RFC 8288 links",
    );
}

// ---- S1–S3, S5: credentials only to their origin -------------------------------------------

#[tokio::test]
async fn s2_cross_origin_redirect_on_list_is_refused_and_nothing_reaches_the_other_origin() {
    let other = Provider::start(|_, _| Resp::ok(page([], r#""has_more":false"#))).await;
    let to = format!("{}/items", other.url());
    let p = Provider::start(move |_, _| Resp::redirect(302, &to)).await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        &format!("redirected to another origin ({})", other.origin()),
    );
    assert!(
        !note(&e).contains("/items?"),
        "the other URL's path and query are not shown"
    );
    assert_eq!(other.hits(), 0, "no request reached the other origin");
    assert_eq!(p.requests()[0].header("x-api-key"), Some(API_KEY));
}

#[tokio::test]
async fn s2_same_origin_redirects_are_followed_up_to_five() {
    let p = Provider::start(|r, _| match r.path() {
        "/items" => Resp::redirect(301, "/v2/items"),
        "/v2/items" => one_page(r),
        // A loop within the origin.
        "/loop" => Resp::redirect(302, "/loop"),
        _ => Resp::json(404, "{}"),
    })
    .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.counts.created, 2);
    let redirected = p
        .requests()
        .into_iter()
        .find(|r| r.path() == "/v2/items")
        .unwrap();
    assert_eq!(redirected.header("x-api-key"), Some(API_KEY));

    let h = engine().await;
    h.connect(
        &spec(API_KEY_AUTH, CURSOR, "").replace("path = \"/items\"", "path = \"/loop\""),
        &p.url(),
    )
    .await
    .unwrap();
    let before = p.hits();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(&e, FailureKind::Malformed, "more than 5 redirects");
    assert_eq!(p.hits() - before, 6, "the first request and five redirects");
}

#[tokio::test]
async fn s3_cross_origin_307_on_token_never_resends_the_client_secret() {
    let other = Provider::start(|_, _| good_token("3600")).await;
    let to = format!("{}/oauth/token", other.url());
    let p = Provider::start(oauth_provider(
        move |_, _| Resp::redirect(307, &to),
        one_page,
    ))
    .await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Malformed,
        &format!("redirected to another origin ({})", other.origin()),
    );
    assert_eq!(other.hits(), 0, "the client secret went nowhere else");
    let token = &p.requests()[0];
    assert_eq!(token.method, "POST");
    assert!(token.body.contains("client_secret="));
    assert_eq!(h.status().await, ConnectionStatus::Active, "not an expiry");
}

#[tokio::test]
async fn s5_error_body_echoing_the_credentials_is_redacted_everywhere() {
    // Echo every header the provider got, as some debugging endpoints do.
    let echo = |r: &Req| {
        let all: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        Resp::json(
            400,
            format!(
                "{{\"error\":\"bad request\",\"got\":\"{}\"}}",
                all.join("; ")
            ),
        )
    };
    let p = Provider::start(oauth_provider(|_, _| good_token("3600"), echo)).await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(&e, FailureKind::Rejected, "[redacted]");
    assert!(
        note(&e).contains("bad request"),
        "the provider's own words stay"
    );
    let items = p
        .requests()
        .into_iter()
        .find(|r| r.path() == "/items")
        .unwrap();
    assert_eq!(
        items.header("authorization"),
        Some(format!("Bearer {ACCESS_TOKEN}").as_str()),
        "the echo did hold the token"
    );
    let alerts = h
        .engine
        .alerts(false, &PageRequest::first(50))
        .await
        .unwrap()
        .items;
    for a in &alerts {
        assert!(!a.body.contains(ACCESS_TOKEN), "{}", a.body);
    }
    let disk = h.disk();
    for s in [ACCESS_TOKEN, CLIENT_SECRET] {
        assert!(!disk.contains(s), "a credential reached the database files");
    }

    // An API key echoed back is redacted too.
    let p = Provider::start(move |r, _| echo(r)).await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(&e, FailureKind::Rejected, "x-api-key: [redacted]");
    assert!(!h.disk().contains(API_KEY));
}

#[tokio::test]
async fn s1_path_as_url_is_refused_and_a_stored_one_stays_on_the_base_origin() {
    let other = Provider::start(|r, _| one_page(r)).await;
    let p = Provider::start(|r, _| match r.path() {
        "/items" => one_page(r),
        _ => Resp::json(404, r#"{"error":"no such path"}"#),
    })
    .await;
    let h = engine().await;
    let bad = spec(API_KEY_AUTH, CURSOR, "").replace(
        "path = \"/items\"",
        &format!("path = \"/{}/x\"", other.url()),
    );
    let e = h.connect(&bad, &p.url()).await.unwrap_err();
    assert_eq!(e.field(), Some("entities.items.path"), "{e}");
    assert!(e.to_string().contains("is a URL, not a path"), "{e}");

    // A spec stored before this check (written straight to the store) still sends nothing
    // to the other host: its path is read as a path on the base URL.
    let mut stored = ConnectorSpec::parse(&spec(API_KEY_AUTH, CURSOR, "")).unwrap();
    stored.entities.get_mut("items").unwrap().path = format!("/{}/x", other.url());
    h.engine
        .store()
        .insert_connection(syncdesk_engine::store::NewConnectionRow {
            id: "c-old".into(),
            name: "p".into(),
            provider: "old".into(),
            base_url: p.url(),
            auth_kind: syncdesk_engine::AuthKind::None,
            client_id: None,
            spec: stored,
            values: Default::default(),
            now: syncdesk_engine::Clock::now(h.clock.as_ref()),
        })
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(&e, FailureKind::Rejected, "HTTP 404");
    assert_eq!(other.hits(), 0, "nothing reached the other host");
    assert!(
        p.requests()[0].path().starts_with("/http:"),
        "{:?}",
        p.requests()[0].target
    );
}

/// Issue 15 lets a provider's sign-in server be on another origin (Xero's
/// identity.xero.com): an absolute token URL may leave the API's origin, but only over https
/// or on this machine, and never to a file or with credentials in it.
#[tokio::test]
async fn s5_i15_token_url_in_plain_http_elsewhere_file_or_with_credentials_is_refused() {
    let other = Provider::start(|_, _| good_token("3600")).await;
    let p = Provider::start(oauth_provider(|_, _| good_token("3600"), one_page)).await;
    let h = engine().await;
    let oauth_at = |token_url: &str, base: Option<&str>| {
        let base = base
            .map(|b| format!("base_url = \"{b}\"\n"))
            .unwrap_or_default();
        format!(
            "{base}{}",
            spec(
                &format!("kind = \"oauth2_client_credentials\"\ntoken_url = \"{token_url}\""),
                CURSOR,
                "",
            )
        )
    };
    for (token_url, says) in [
        (
            "http://sign-in.example.test/oauth/token".to_string(),
            "must use https",
        ),
        ("file:///etc/passwd".to_string(), "uses the file: scheme"),
        (
            format!("http://id:pw@{}/oauth/token", p.addr),
            "must not hold a user name or password",
        ),
    ] {
        let e = h
            .connect(&oauth_at(&token_url, Some(&p.url())), &p.url())
            .await
            .unwrap_err();
        assert_eq!(e.field(), Some("auth.token_url"), "{token_url}: {e}");
        assert!(e.to_string().contains(says), "{token_url}: {e}");
        assert!(!e.to_string().contains("pw@"), "{e}");
    }
    let e = h
        .connect(
            &spec(API_KEY_AUTH, CURSOR, ""),
            &format!("http://u:pw@{}", p.addr),
        )
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("base_url"));

    // A spec without a base URL is checked against the connection's: plain http to
    // another machine is refused there too, and nothing is sent anywhere.
    let elsewhere = oauth_at("http://sign-in.example.test/oauth/token", None);
    let e = h.connect(&elsewhere, &p.url()).await.unwrap_err();
    assert_eq!(e.field(), Some("auth.token_url"), "{e}");
    assert_eq!(other.hits(), 0);
}

// ---- P4: headers no one should send -------------------------------------------------------

#[tokio::test]
async fn p4_bad_headers_non_utf8_retry_after_falls_back_to_the_backoff() {
    let p = Provider::start(|r, n| {
        if n == 1 {
            Resp::json(429, "{}").header("retry-after", b"\xff\xfe soon")
        } else {
            one_page(r)
        }
    })
    .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.rate_limit_waits, 1);
    assert_eq!(h.clock.take_sleeps(), vec![Duration::from_secs(1)]);
}

#[tokio::test]
async fn p4_absurd_retry_after_times_out_without_a_panic() {
    let p = Provider::start(|_, _| Resp::json(429, "{}").header("retry-after", "100000000000000"))
        .await;
    let h = engine().await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::TimedOut, "{:?}", e.note);
    assert!(
        note(&e).contains("would pass the execution timeout"),
        "{}",
        note(&e)
    );
}

#[tokio::test]
async fn p4_absurd_expires_in_is_a_year_without_a_panic() {
    let p = Provider::start(oauth_provider(
        |_, _| good_token("9223372036854775807"),
        one_page,
    ))
    .await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    // The expiry is written by a tracked task after the grant; the next read sees it.
    h.engine
        .run_job(&job.id, RunOptions::default())
        .await
        .unwrap();
    let conn = h.engine.connection("p").await.unwrap();
    assert_eq!(
        conn.token_expires_at,
        Some(syncdesk_engine::Clock::now(h.clock.as_ref()) + chrono::Duration::days(365))
    );
}

// ---- token endpoint failures classified ----------------------------------------------------

#[tokio::test]
async fn token_429_and_5xx_are_retried_and_never_expire_the_connection() {
    let p = Provider::start(oauth_provider(
        |_, n| match n {
            1 => Resp::json(429, r#"{"error":"slow_down"}"#),
            2 | 3 => Resp::json(503, "unavailable"),
            _ => good_token("3600"),
        },
        one_page,
    ))
    .await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!((e.rate_limit_waits, e.request_retries), (1, 2));
    assert_eq!(h.status().await, ConnectionStatus::Active);
}

#[tokio::test]
async fn token_5xx_during_a_refresh_after_a_401_is_retried() {
    let items_seen = AtomicU64::new(0);
    let p = Provider::start(oauth_provider(
        |_, n| match n {
            2 => Resp::json(503, "busy"),
            _ => good_token("3600"),
        },
        move |r| {
            if items_seen.fetch_add(1, Ordering::SeqCst) == 0 {
                Resp::json(401, r#"{"error":"token expired"}"#)
            } else {
                one_page(r)
            }
        },
    ))
    .await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.request_retries, 1);
    let grants = p
        .requests()
        .iter()
        .filter(|r| r.path() == "/oauth/token")
        .count();
    assert_eq!(grants, 3, "grant, refresh refused with 503, refresh again");
    assert_eq!(h.status().await, ConnectionStatus::Active);
}

#[tokio::test]
async fn token_down_fails_as_provider_unavailable_and_the_connection_stays_active() {
    let p = Provider::start(oauth_provider(|_, _| Resp::json(503, "down"), one_page)).await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::ProviderUnavailable,
        "token endpoint answered HTTP 503",
    );
    assert_eq!(p.hits(), 4, "the first attempt and three retries");
    assert_eq!(h.status().await, ConnectionStatus::Active);
}

#[tokio::test]
async fn token_refusals_expire_only_when_the_credential_is_refused() {
    let p = Provider::start(oauth_provider(
        |_, _| {
            Resp::json(
                400,
                r#"{"error":"invalid_grant","error_description":"revoked"}"#,
            )
        },
        one_page,
    ))
    .await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(&e, FailureKind::Auth, "invalid_grant (revoked)");
    assert_eq!(h.status().await, ConnectionStatus::Expired);

    let p = Provider::start(oauth_provider(
        |_, _| {
            Resp::json(
                400,
                format!(r#"{{"error":"invalid_request","error_description":"bad secret {CLIENT_SECRET}"}}"#),
            )
        },
        one_page,
    ))
    .await;
    let h = engine().await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    failed(
        &e,
        FailureKind::Rejected,
        "invalid_request (bad secret [redacted])",
    );
    assert_eq!(h.status().await, ConnectionStatus::Active);
}

#[tokio::test]
async fn token_requests_follow_lifetime_not_pages() {
    // 2-second tokens; each page "takes" 100 ms of the manual clock.
    let clock_step = Duration::from_millis(100);
    let h = engine().await;
    let clock = h.clock.clone();
    let p = Provider::start(oauth_provider(
        |_, _| good_token("2"),
        move |r| {
            clock.advance(clock_step);
            let after: u64 = r
                .query()
                .get("starting_after")
                .map(|s| s.parse().unwrap())
                .unwrap_or(0);
            let more = after + 10 < 1000;
            Resp::ok(page(
                (after + 1..=after + 10).map(|i| i.to_string()),
                &format!(r#""has_more":{more}"#),
            ))
        },
    ))
    .await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.counts.created, 1000);
    let grants = p
        .requests()
        .iter()
        .filter(|r| r.path() == "/oauth/token")
        .count();
    // 100 pages × 100 ms = 10 s; a token lasts 2 s less a 200 ms margin.
    assert!(
        (5..=7).contains(&grants),
        "{grants} token requests for 100 pages"
    );
}

#[tokio::test]
async fn secrets_are_read_from_the_keychain_once_not_per_request() {
    let many_pages = |r: &Req| {
        let after: u64 = r
            .query()
            .get("starting_after")
            .map(|s| s.parse().unwrap())
            .unwrap_or(0);
        Resp::ok(page(
            (after + 1..=after + 10).map(|i| i.to_string()),
            &format!(r#""has_more":{}"#, after + 10 < 200),
        ))
    };
    let p = Provider::start(move |r, _| many_pages(r)).await;
    let secrets = Arc::new(CountingSecrets::default());
    let h = engine_with(secrets.clone()).await;
    h.connect(&spec(API_KEY_AUTH, CURSOR, ""), &p.url())
        .await
        .unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.counts.created, 200, "{:?}", e.note);
    assert_eq!(p.hits(), 20);
    assert_eq!(
        secrets.reads.lock().unwrap().get("api_key").copied(),
        Some(1),
        "20 requests, one keychain read"
    );

    let secrets = Arc::new(CountingSecrets::default());
    let h = engine_with(secrets.clone()).await;
    // Every page takes a token's lifetime: each request refreshes first.
    let clock = h.clock.clone();
    let p = Provider::start(oauth_provider(
        |_, _| good_token("2"),
        move |r| {
            clock.advance(Duration::from_secs(2));
            many_pages(r)
        },
    ))
    .await;
    h.connect(&spec(OAUTH, CURSOR, ""), &p.url()).await.unwrap();
    let job = h.job(|_| {}).await;
    let e = h.run(&job).await;
    assert_eq!(e.counts.created, 200, "{:?}", e.note);
    let grants = p
        .requests()
        .iter()
        .filter(|r| r.path() == "/oauth/token")
        .count();
    assert!(grants > 1, "{grants}");
    assert_eq!(
        secrets.reads.lock().unwrap().get("client_secret").copied(),
        Some(1),
        "{grants} grants, one keychain read of the client secret"
    );
}
