//! Issue 15, authentication and connection values, against a recording provider on
//! 127.0.0.1: an API server and a sign-in server on two origins (as Xero's api.xero.com and
//! identity.xero.com) sharing one token table, each logging every request it gets, so a test
//! can say which credential reached which origin.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest;
use syncdesk_engine::{
    AuthKind, ConnectorSpec, Engine, EngineOptions, ExecutionStatus, ManualClock,
    MemorySecretStore, NewConnection, NewJob, RunOptions, Secret, SecretKind, SecretStore,
};

/// One request as a server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    /// Everything the request carried, as one text to search for a credential.
    fn text(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        format!(
            "{} {}?{}\n{}\n\n{}",
            self.method,
            self.path,
            self.query,
            headers.join("\n"),
            self.body
        )
    }

    fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

#[derive(Debug, Default)]
struct Tables {
    /// Requests by server ("api", "id").
    seen: HashMap<&'static str, Vec<Seen>>,
    /// Authorization codes and their PKCE challenges.
    codes: HashMap<String, String>,
    access: HashSet<String>,
    /// Refresh tokens not used yet: each works once (rotation).
    refresh: HashSet<String>,
    /// Every token ever issued, for searching requests.
    issued: Vec<String>,
    n: u64,
    api_key: String,
}

impl Tables {
    fn issue(&mut self) -> serde_json::Value {
        self.n += 1;
        let access = format!("at-{:04}-access", self.n);
        let refresh = format!("rt-{:04}-refresh", self.n);
        self.access.insert(access.clone());
        self.refresh.insert(refresh.clone());
        self.issued.push(access.clone());
        self.issued.push(refresh.clone());
        serde_json::json!({
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": 1800,
        })
    }
}

type Shared = Arc<Mutex<Tables>>;

/// Two servers on two origins over one token table.
struct Provider {
    tables: Shared,
    api: String,
    id: String,
}

impl Provider {
    async fn start() -> Provider {
        let tables: Shared = Arc::new(Mutex::new(Tables {
            api_key: "key-live-0123456789".into(),
            ..Tables::default()
        }));
        let api = serve(tables.clone(), "api").await;
        let id = serve(tables.clone(), "id").await;
        Provider { tables, api, id }
    }

    fn seen(&self, server: &str) -> Vec<Seen> {
        self.tables
            .lock()
            .unwrap()
            .seen
            .get(server)
            .cloned()
            .unwrap_or_default()
    }

    /// The provider forgets every access token (they expired): the next call is a 401.
    fn expire_access(&self) {
        self.tables.lock().unwrap().access.clear();
    }

    fn issue_refresh_token(&self) -> String {
        let grant = self.tables.lock().unwrap().issue();
        grant["refresh_token"].as_str().unwrap().to_string()
    }

    fn api_key(&self) -> String {
        self.tables.lock().unwrap().api_key.clone()
    }
}

async fn serve(tables: Shared, name: &'static str) -> String {
    let app = axum::Router::new()
        .fallback(handle)
        .with_state((tables, name));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

async fn handle(
    State((tables, server)): State<(Shared, &'static str)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body,
    };
    let mut t = tables.lock().unwrap();
    t.seen.entry(server).or_default().push(seen.clone());
    let query: HashMap<String, String> = url::form_urlencoded::parse(seen.query.as_bytes())
        .into_owned()
        .collect();
    match (server, seen.path.as_str()) {
        (_, "/identity/connect/authorize" | "/oauth/authorize") => {
            t.n += 1;
            let code = format!("code-{:04}", t.n);
            t.codes
                .insert(code.clone(), query["code_challenge"].clone());
            let to = format!(
                "{}?code={code}&state={}",
                query["redirect_uri"], query["state"]
            );
            (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
        }
        (_, "/connect/token" | "/oauth/v1/token") => {
            let form = seen.form();
            let refused = |why: &str| {
                json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": "invalid_grant", "error_description": why}),
                )
            };
            match form.get("grant_type").map(String::as_str) {
                Some("authorization_code") => {
                    let Some(challenge) = t.codes.remove(&form["code"]) else {
                        return refused("unknown code");
                    };
                    let verifier = sha2::Sha256::digest(form["code_verifier"].as_bytes());
                    if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(verifier)
                        != challenge
                    {
                        return refused("verifier");
                    }
                }
                Some("refresh_token") => {
                    if !t.refresh.remove(&form["refresh_token"]) {
                        return refused("refresh token unknown or already used");
                    }
                }
                _ => return refused("grant"),
            }
            json(StatusCode::OK, t.issue())
        }
        ("api", path) => {
            if let Some(rest) = path.strip_prefix("/keyed") {
                if query.get("api_key") != Some(&t.api_key) {
                    return json(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({"error": "bad key"}),
                    );
                }
                if rest == "/broken" {
                    // Providers echo what they were asked, key and all.
                    let echo = format!("no such thing: {path}?{}", seen.query);
                    return json(StatusCode::BAD_REQUEST, serde_json::json!({"error": echo}));
                }
            } else {
                let bearer = seen
                    .headers
                    .iter()
                    .find(|(k, _)| k == "authorization")
                    .and_then(|(_, v)| v.strip_prefix("Bearer "));
                if !bearer.is_some_and(|b| t.access.contains(b)) {
                    return json(
                        StatusCode::UNAUTHORIZED,
                        serde_json::json!({"error": "unauthorized"}),
                    );
                }
            }
            if path.starts_with("/api.xro/2.0/Contacts") {
                return json(
                    StatusCode::OK,
                    serde_json::json!({"Contacts": [{
                        "ContactID": "c-1", "Name": "Ada", "EmailAddress": "ada@example.com",
                        "UpdatedDateUTC": "/Date(1573755038314+0000)/",
                    }]}),
                );
            }
            if path.starts_with("/crm/v3/objects/contacts") {
                return json(
                    StatusCode::OK,
                    serde_json::json!({"results": [{
                        "id": "1",
                        "properties": {"email": "ada@example.com", "firstname": "Ada"},
                        "createdAt": "2024-01-02T03:04:05Z",
                        "updatedAt": "2024-01-02T03:04:05Z",
                    }]}),
                );
            }
            if path == "/connections" {
                return json(
                    StatusCode::OK,
                    serde_json::json!([
                        {"id": "c1", "tenantId": "t-uk", "tenantName": "Demo Company (UK)"},
                        {"id": "c2", "tenantId": "t-nz", "tenantName": "Demo Company (NZ)"},
                    ]),
                );
            }
            json(
                StatusCode::OK,
                serde_json::json!({"items": [
                    {"id": "1", "name": "Ada"},
                    {"id": "2", "name": "Grace"},
                ]}),
            )
        }
        _ => json(StatusCode::NOT_FOUND, serde_json::json!({"error": "none"})),
    }
}

struct H {
    engine: Engine,
    secrets: Arc<MemorySecretStore>,
    _dir: tempfile::TempDir,
}

async fn engine() -> H {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemorySecretStore::default());
    let engine = Engine::open(EngineOptions {
        database: common::database(dir.path()).await,
        secrets: secrets.clone(),
        clock: Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        )),
        actor: "admin@test".into(),
    })
    .await
    .unwrap();
    H {
        engine,
        secrets,
        _dir: dir,
    }
}

impl H {
    async fn run(&self, conn: &str, entity: &str) -> syncdesk_engine::Execution {
        let job = self
            .engine
            .create_job(NewJob {
                name: format!("{conn} {entity} {}", unique()),
                connection: conn.into(),
                entity: entity.into(),
                direction: syncdesk_engine::Direction::Pull,
                mode: syncdesk_engine::Mode::Full,
                schedule: None,
                enabled: true,
                settings: Default::default(),
            })
            .await
            .unwrap();
        self.engine
            .run_job(&job.id, RunOptions::default())
            .await
            .unwrap()
    }
}

/// A number not used before in this process, for job names.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A spec shaped like Xero's: OAuth2 with absolute sign-in URLs on another host than the API.
fn xero_like(api: &str) -> ConnectorSpec {
    ConnectorSpec::parse(&format!(
        r#"
name = "Books"
base_url = "{api}"
[auth]
kind = "oauth2_refresh_token"
authorize_url = "https://login.books.test/identity/connect/authorize"
token_url = "https://identity.books.test/connect/token"
scope = "offline_access read"
[entities.contacts]
path = "/contacts"
records = "items"
pagination = {{ style = "none" }}
mappings = [{{ source = "name", target = "name" }}]
"#
    ))
    .unwrap()
}

/// The user's browser: follows the sign-in page's redirect back to the app.
async fn browse(url: String) -> u16 {
    reqwest::get(url).await.unwrap().status().as_u16()
}

async fn sign_in(h: &H, c: NewConnection) -> syncdesk_engine::Result<syncdesk_engine::Connection> {
    let s = h.engine.begin_sign_in(c).await?;
    let browser = tokio::spawn(browse(s.url().to_string()));
    let out = h
        .engine
        .finish_sign_in(s, &tokio_util::sync::CancellationToken::new())
        .await;
    browser.await.unwrap();
    out
}

/// Every credential-looking value in `requests`' text.
fn carries(requests: &[Seen], needle: &str) -> bool {
    requests.iter().any(|r| r.text().contains(needle))
}

#[tokio::test]
async fn i15_sign_in_on_another_origin_sends_each_credential_only_to_its_own_origin() {
    let p = Provider::start().await;
    let h = engine().await;
    let conn = sign_in(
        &h,
        NewConnection {
            client_id: Some("public-app".into()),
            auth_base_url: Some(p.id.clone()),
            ..NewConnection::new("books", xero_like(&p.api))
        },
    )
    .await
    .unwrap();
    assert_eq!(conn.auth_kind, AuthKind::Oauth2RefreshToken);
    // The browser went to the sign-in server, which the connection keeps.
    let id_seen = p.seen("id");
    assert_eq!(id_seen[0].path, "/identity/connect/authorize");
    // A public client: PKCE and the client id in the body, no secret.
    let exchange = id_seen[1].form();
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["client_id"], "public-app");
    assert!(exchange.contains_key("code_verifier"));
    assert!(!exchange.contains_key("client_secret"));

    let e = h.run("books", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    // The access token expires: a refresh at the sign-in server, by the public client.
    p.expire_access();
    let first_rt = h
        .secrets
        .get(&conn.id, SecretKind::RefreshToken)
        .unwrap()
        .unwrap();
    let e = h.run("books", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    let id_seen = p.seen("id");
    let refresh = id_seen.last().unwrap().form();
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(refresh["refresh_token"], first_rt.expose());
    assert_eq!(refresh["client_id"], "public-app");
    assert!(!refresh.contains_key("client_secret"));
    // The rotated refresh token is the one stored; the used one is spent at the provider.
    let rotated = h
        .secrets
        .get(&conn.id, SecretKind::RefreshToken)
        .unwrap()
        .unwrap();
    assert_ne!(rotated, first_rt);
    assert!(p.tables.lock().unwrap().refresh.contains(rotated.expose()));

    // Which credential went where: refresh tokens, codes and verifiers only to the sign-in
    // server; access tokens only to the API, which never saw the sign-in server's traffic.
    let api_seen = p.seen("api");
    assert!(!api_seen.is_empty());
    let issued = p.tables.lock().unwrap().issued.clone();
    for token in &issued {
        if token.starts_with("rt-") {
            assert!(!carries(&api_seen, token), "{token} reached the API");
        } else {
            assert!(
                !carries(&id_seen, token),
                "{token} reached the sign-in server"
            );
        }
    }
    for r in &api_seen {
        assert!(r.query.is_empty() && r.body.is_empty(), "{r:?}");
        assert!(!r.text().contains("code-") && !r.text().contains("public-app"));
    }
    for r in &id_seen {
        assert!(
            !r.headers.iter().any(|(k, _)| k == "authorization"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn i15_a_public_client_refreshes_with_its_client_id_and_rotation_is_stored_before_use() {
    let p = Provider::start().await;
    let h = engine().await;
    let rt = p.issue_refresh_token();
    // A refresh token pasted in (the CLI's way): verified by a refresh at creation.
    let conn = h
        .engine
        .create_connection(NewConnection {
            client_id: Some("public-app".into()),
            auth_base_url: Some(p.id.clone()),
            secrets: vec![(SecretKind::RefreshToken, Secret::new(rt.clone()))],
            ..NewConnection::new("books", xero_like(&p.api))
        })
        .await
        .unwrap();
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Active);
    let stored = h
        .secrets
        .get(&conn.id, SecretKind::RefreshToken)
        .unwrap()
        .unwrap();
    assert_ne!(
        stored.expose(),
        rt,
        "the rotated token replaced the spent one"
    );
    let grant = p.seen("id")[0].form();
    assert_eq!(grant["client_id"], "public-app");
    assert!(!grant.contains_key("client_secret"));
    // Each later refresh spends the stored token and stores the next one.
    for _ in 0..2 {
        p.expire_access();
        let before = h
            .secrets
            .get(&conn.id, SecretKind::RefreshToken)
            .unwrap()
            .unwrap();
        let e = h.run("books", "contacts").await;
        assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
        let after = h
            .secrets
            .get(&conn.id, SecretKind::RefreshToken)
            .unwrap()
            .unwrap();
        assert_ne!(before, after);
        assert!(p.tables.lock().unwrap().refresh.contains(after.expose()));
    }
}

#[tokio::test]
async fn i15_auth_base_url_moves_only_absolute_sign_in_urls_and_must_be_an_origin() {
    let p = Provider::start().await;
    let h = engine().await;
    // A path in the sign-in address is refused: only scheme, host and port are replaced.
    let e = h
        .engine
        .create_connection(NewConnection {
            auth_base_url: Some(format!("{}/somewhere", p.id)),
            client_id: Some("public-app".into()),
            secrets: vec![(SecretKind::RefreshToken, Secret::new("rt-unused"))],
            ..NewConnection::new("x", xero_like(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("auth_base_url"), "{e}");
    let e = h
        .engine
        .create_connection(NewConnection {
            auth_base_url: Some("ftp://127.0.0.1:9".into()),
            client_id: Some("public-app".into()),
            secrets: vec![(SecretKind::RefreshToken, Secret::new("rt-unused"))],
            ..NewConnection::new("x", xero_like(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("auth_base_url"), "{e}");
    // Plain http away from this machine is refused for sign-in URLs, moved or not.
    let e = h
        .engine
        .create_connection(NewConnection {
            auth_base_url: Some("http://login.books.test".into()),
            client_id: Some("public-app".into()),
            secrets: vec![(SecretKind::RefreshToken, Secret::new("rt-unused"))],
            ..NewConnection::new("x", xero_like(&p.api))
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("https"), "{e}");
    assert!(h.engine.connections().await.unwrap().is_empty());
}

/// A log writer into a shared buffer.
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A spec shaped like Stripe's restricted keys in a query parameter.
fn keyed(api: &str) -> ConnectorSpec {
    ConnectorSpec::parse(&format!(
        r#"
name = "Keyed"
base_url = "{api}"
[auth]
kind = "api_key"
query = "api_key"
secret_label = "Live key"
[entities.items]
path = "/keyed/items"
records = "items"
pagination = {{ style = "none" }}
mappings = [{{ source = "name", target = "name" }}]
[entities.wrong]
path = "/keyed/broken"
records = "items"
pagination = {{ style = "none" }}
mappings = [{{ source = "name", target = "name" }}]
"#
    ))
    .unwrap()
}

#[tokio::test]
async fn i15_an_api_key_in_the_query_is_sent_there_and_never_stored_or_shown() {
    // Everything the engine logs, at every level, on this (the test's only) thread.
    let log = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = log.clone();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogSink(sink.clone()))
            .finish(),
    );
    let p = Provider::start().await;
    let h = engine().await;
    let key = p.api_key();
    let mut events = h.engine.subscribe();
    // A wrong key: refused at creation, nothing kept.
    let e = h
        .engine
        .create_connection(NewConnection {
            secrets: vec![(SecretKind::ApiKey, Secret::new("key-wrong-000000"))],
            ..NewConnection::new("keyed", keyed(&p.api))
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, syncdesk_engine::Error::AuthExpired { .. }),
        "{e}"
    );
    assert!(!e.to_string().contains("key-wrong"), "{e}");
    assert!(h.engine.connections().await.unwrap().is_empty());

    let conn = h
        .engine
        .create_connection(NewConnection {
            secrets: vec![(SecretKind::ApiKey, Secret::new(key.clone()))],
            ..NewConnection::new("keyed", keyed(&p.api))
        })
        .await
        .unwrap();
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Active);
    let ok = h.run("keyed", "items").await;
    assert_eq!(ok.status, ExecutionStatus::Completed, "{:?}", ok.note);
    let r = p.seen("api").last().unwrap().clone();
    assert_eq!(r.path, "/keyed/items");
    assert!(r.query.contains(&format!("api_key={key}")), "{r:?}");
    assert!(
        !r.headers.iter().any(|(_, v)| v.contains(&key)),
        "not in a header too"
    );

    // The provider echoes the key in an error: the run's note keeps the path, not the key.
    let bad = h.run("keyed", "wrong").await;
    assert_eq!(bad.status, ExecutionStatus::Failed);
    let note = bad.note.clone().unwrap();
    assert!(note.contains("/keyed/broken"), "{note}");
    assert!(!note.contains(&key), "{note}");

    // Nowhere else either: events, the database file.
    while let Ok(ev) = events.try_recv() {
        let text = format!("{ev:?}");
        assert!(!text.contains(&key), "{text}");
    }
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    assert!(
        logged.contains("TRACE") || logged.contains("DEBUG"),
        "logs were captured"
    );
    assert!(!logged.contains(&key), "the key was logged");
    h.engine.shutdown().await;
    for entry in std::fs::read_dir(h._dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the key reached the database"
        );
    }
}

/// A spec shaped like HubSpot's: a private-app token first, browser sign-in as the other way,
/// its sign-in page on another host than its API and its token endpoint on the API's.
fn hubspot_like(api: &str) -> ConnectorSpec {
    ConnectorSpec::parse(&format!(
        r#"
name = "Crm"
base_url = "{api}"
[auth]
kind = "bearer"
secret_label = "Private app access token"
alternatives = ["oauth2_refresh_token"]
authorize_url = "https://app.crm.test/identity/connect/authorize"
token_url = "/connect/token"
[entities.contacts]
path = "/contacts"
records = "items"
pagination = {{ style = "none" }}
mappings = [{{ source = "name", target = "name" }}]
"#
    ))
    .unwrap()
}

#[tokio::test]
async fn i15_a_connection_uses_the_specs_auth_kind_or_one_of_its_alternatives() {
    let p = Provider::start().await;
    let h = engine().await;
    // Not offered by the spec: refused, naming what is.
    let e = h
        .engine
        .create_connection(NewConnection {
            auth_kind: Some(AuthKind::ApiKey),
            secrets: vec![(SecretKind::ApiKey, Secret::new("whatever-key"))],
            ..NewConnection::new("crm", hubspot_like(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("auth_kind"));
    assert!(
        e.to_string().contains("bearer or oauth2_refresh_token"),
        "{e}"
    );
    // The secret the chosen way needs, named as the spec names it, before anything is sent.
    let e = h
        .engine
        .create_connection(NewConnection::new("crm", hubspot_like(&p.api)))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("access_token"));
    assert!(e.to_string().contains("Private app access token"), "{e}");
    let e = h
        .engine
        .create_connection(NewConnection {
            auth_kind: Some(AuthKind::Oauth2RefreshToken),
            ..NewConnection::new("crm", hubspot_like(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("client_id"), "{e}");
    let e = h
        .engine
        .create_connection(NewConnection {
            auth_kind: Some(AuthKind::Oauth2RefreshToken),
            client_id: Some("crm-app".into()),
            ..NewConnection::new("crm", hubspot_like(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("refresh_token"), "{e}");
    assert!(p.seen("api").is_empty());
    // The alternative, with a refresh token pasted in.
    let rt = p.issue_refresh_token();
    let conn = h
        .engine
        .create_connection(NewConnection {
            auth_kind: Some(AuthKind::Oauth2RefreshToken),
            client_id: Some("crm-app".into()),
            secrets: vec![
                (SecretKind::RefreshToken, Secret::new(rt)),
                (SecretKind::ClientSecret, Secret::new("crm-app-secret")),
            ],
            ..NewConnection::new("crm-oauth", hubspot_like(&p.api))
        })
        .await
        .unwrap();
    assert_eq!(conn.auth_kind, AuthKind::Oauth2RefreshToken);
    // A confidential client sends both in the body.
    let grant = p.seen("api").last().unwrap().form();
    assert_eq!(grant["grant_type"], "refresh_token");
    assert_eq!(grant["client_id"], "crm-app");
    assert_eq!(grant["client_secret"], "crm-app-secret");
    let e = h.run("crm-oauth", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    // The primary kind: a private-app token, checked by a request before it is kept.
    let token = p.tables.lock().unwrap().issue()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let e = h
        .engine
        .create_connection(NewConnection {
            secrets: vec![(SecretKind::AccessToken, Secret::new("pat-wrong-0000"))],
            ..NewConnection::new("crm-pat", hubspot_like(&p.api))
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, syncdesk_engine::Error::AuthExpired { .. }),
        "{e}"
    );
    let conn = h
        .engine
        .create_connection(NewConnection {
            secrets: vec![(SecretKind::AccessToken, Secret::new(token))],
            ..NewConnection::new("crm-pat", hubspot_like(&p.api))
        })
        .await
        .unwrap();
    assert_eq!(conn.auth_kind, AuthKind::Bearer);
    assert_eq!(conn.status, syncdesk_engine::ConnectionStatus::Active);
}

#[tokio::test]
async fn i15_browser_sign_in_works_for_a_spec_whose_alternative_is_oauth() {
    let p = Provider::start().await;
    let h = engine().await;
    let conn = sign_in(
        &h,
        NewConnection {
            client_id: Some("crm-app".into()),
            // Tests point the absolute sign-in page at the same loopback provider.
            auth_base_url: Some(p.id.clone()),
            ..NewConnection::new("crm", hubspot_like(&p.api))
        },
    )
    .await
    .unwrap();
    assert_eq!(conn.auth_kind, AuthKind::Oauth2RefreshToken);
    assert_eq!(p.seen("id")[0].path, "/identity/connect/authorize");
    // The relative token URL is on the API's origin.
    assert_eq!(p.seen("api")[0].form()["grant_type"], "authorization_code");
    let e = h.run("crm", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    // A spec with no OAuth at all has no browser sign-in.
    let e = h
        .engine
        .begin_sign_in(NewConnection {
            client_id: Some("x".into()),
            ..NewConnection::new("keyed", keyed(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("auth_kind"), "{e}");
    assert!(
        e.to_string().contains("Keyed has no browser sign-in"),
        "{e}"
    );
    let e = h
        .engine
        .begin_sign_in(NewConnection {
            client_id: Some("x".into()),
            auth_kind: Some(AuthKind::Bearer),
            ..NewConnection::new("crm2", hubspot_like(&p.api))
        })
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("auth_kind"), "{e}");
    assert!(e.to_string().contains("not bearer"), "{e}");
}

/// A spec with connection-level values, one listed by the provider (as Xero's tenant).
fn with_values(api: &str) -> ConnectorSpec {
    ConnectorSpec::parse(&format!(
        r#"
name = "Books"
base_url = "{api}"
[auth]
kind = "bearer"
[values.tenant_id]
label = "Books organisation"
choices = {{ path = "/connections", records = "", value = "tenantId", label = "tenantName" }}
[values.region]
label = "Data region"
help = "Where your books are kept."
[request]
headers = {{ "books-tenant-id" = "{{values.tenant_id}}" }}
[entities.contacts]
path = "/contacts"
records = "items"
pagination = {{ style = "none" }}
mappings = [{{ source = "name", target = "name" }}]
"#
    ))
    .unwrap()
}

#[tokio::test]
async fn i15_connection_values_are_checked_listed_from_the_provider_set_and_audited() {
    let p = Provider::start().await;
    let h = engine().await;
    let token = p.tables.lock().unwrap().issue()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let new = |values: &[(&str, &str)]| NewConnection {
        secrets: vec![(SecretKind::AccessToken, Secret::new(token.clone()))],
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..NewConnection::new("books", with_values(&p.api))
    };
    // A value the spec declares and the provider does not list must be given.
    let e = h.engine.create_connection(new(&[])).await.unwrap_err();
    assert_eq!(e.field(), Some("values.region"));
    assert!(e.to_string().contains("Data region"), "{e}");
    // One it does not declare is refused, naming those it does.
    let e = h
        .engine
        .create_connection(new(&[("region", "eu"), ("tenant", "x")]))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("values.tenant"));
    assert!(e.to_string().contains("region, tenant_id"), "{e}");
    let e = h
        .engine
        .create_connection(new(&[("region", "eu\r\nx-evil: 1")]))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("values.region"));
    assert!(h.engine.connections().await.unwrap().is_empty());

    // The listed one may be chosen after the connection exists (it takes its credentials).
    let conn = h
        .engine
        .create_connection(new(&[("region", " eu\n")]))
        .await
        .unwrap();
    assert_eq!(conn.values.get("region").map(String::as_str), Some("eu"));
    assert_eq!(conn.values.get("tenant_id"), None);
    let choices = h.engine.value_choices("books", "tenant_id").await.unwrap();
    assert_eq!(
        choices
            .iter()
            .map(|c| (c.value.as_str(), c.label.as_str()))
            .collect::<Vec<_>>(),
        [("t-uk", "Demo Company (UK)"), ("t-nz", "Demo Company (NZ)")]
    );
    let listing = p.seen("api").last().unwrap().clone();
    assert_eq!(listing.path, "/connections");
    assert!(
        listing
            .headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.contains(&token)),
        "with the connection's credentials"
    );
    assert!(
        !listing.headers.iter().any(|(k, _)| k == "books-tenant-id"),
        "without the request headers that need the value being chosen"
    );
    let e = h.engine.value_choices("books", "region").await.unwrap_err();
    assert_eq!(e.field(), Some("values.region"));

    // Until it is chosen, a run that needs it says which value is missing.
    let e = h.run("books", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert!(
        e.note
            .as_deref()
            .unwrap_or_default()
            .contains("Books organisation"),
        "{:?}",
        e.note
    );

    // Only a listed organisation can be chosen.
    let e = h
        .engine
        .set_connection_value("books", "tenant_id", "t-xx")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Demo Company (UK) (t-uk)"), "{e}");
    let conn = h
        .engine
        .set_connection_value("books", "tenant_id", "t-nz")
        .await
        .unwrap();
    assert_eq!(
        conn.values.get("tenant_id").map(String::as_str),
        Some("t-nz")
    );
    // Data requests carry it from now on.
    let e = h.run("books", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    let data = p.seen("api").last().unwrap().clone();
    assert_eq!(data.path, "/contacts");
    assert!(
        data.headers
            .iter()
            .any(|(k, v)| k == "books-tenant-id" && v == "t-nz"),
        "{data:?}"
    );
    let conn = h
        .engine
        .set_connection_value("books", "region", "us")
        .await
        .unwrap();
    assert_eq!(conn.values.len(), 2);
    assert_eq!(conn.values["region"], "us");
    let e = h
        .engine
        .set_connection_value("books", "nope", "1")
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("values.nope"));
    let audit = h
        .engine
        .audit(&syncdesk_engine::PageRequest::first(50))
        .await
        .unwrap()
        .items;
    let notes: Vec<String> = audit
        .iter()
        .filter(|a| a.action == "connection.value")
        .filter_map(|a| a.note.clone())
        .collect();
    assert!(
        notes.contains(&"Books organisation: (none) → t-nz".to_string()),
        "{notes:?}"
    );
    assert!(
        notes.contains(&"Data region: eu → us".to_string()),
        "{notes:?}"
    );
}

// ---- the catalog's own entries --------------------------------------------------------

#[tokio::test]
async fn i15_the_xero_entry_signs_in_on_its_identity_server_and_syncs_the_chosen_organisation() {
    let p = Provider::start().await;
    let h = engine().await;
    let spec = ConnectorSpec::parse(include_str!("../catalog/xero.toml")).unwrap();
    let conn = sign_in(
        &h,
        NewConnection {
            base_url: Some(p.api.clone()),
            auth_base_url: Some(p.id.clone()),
            client_id: Some("xero-desktop-app".into()),
            ..NewConnection::new("xero", spec)
        },
    )
    .await
    .unwrap();
    assert_eq!(conn.auth_kind, AuthKind::Oauth2RefreshToken);
    let id_seen = p.seen("id");
    assert_eq!(
        (id_seen[0].path.as_str(), id_seen[1].path.as_str()),
        ("/identity/connect/authorize", "/connect/token")
    );
    assert!(
        p.seen("api").is_empty(),
        "signing in sends nothing to the API"
    );
    // The organisation is chosen from those the sign-in allowed.
    let choices = h.engine.value_choices("xero", "tenant_id").await.unwrap();
    assert_eq!(choices[0].label, "Demo Company (UK)");
    h.engine
        .set_connection_value("xero", "tenant_id", "t-uk")
        .await
        .unwrap();
    p.expire_access();
    let e = h.run("xero", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.counts.created, 1);
    let api_seen = p.seen("api");
    let data = api_seen.last().unwrap();
    assert_eq!(data.path, "/api.xro/2.0/Contacts");
    assert!(data
        .headers
        .iter()
        .any(|(k, v)| k == "xero-tenant-id" && v == "t-uk"));
    // The refresh went to the identity server, by the public client, and nothing of it to
    // the API.
    let refresh = p.seen("id").last().unwrap().form();
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(refresh["client_id"], "xero-desktop-app");
    for r in &api_seen {
        assert!(!r.text().contains("rt-") && !r.text().contains("xero-desktop-app"));
    }
}

#[tokio::test]
async fn i15_the_hubspot_entry_signs_in_as_its_alternative_with_client_id_and_secret_in_the_body() {
    let p = Provider::start().await;
    let h = engine().await;
    let spec = ConnectorSpec::parse(include_str!("../catalog/hubspot.toml")).unwrap();
    let conn = sign_in(
        &h,
        NewConnection {
            base_url: Some(p.api.clone()),
            auth_base_url: Some(p.id.clone()),
            client_id: Some("hubspot-app".into()),
            secrets: vec![(SecretKind::ClientSecret, Secret::new("hubspot-app-secret"))],
            ..NewConnection::new("hubspot", spec)
        },
    )
    .await
    .unwrap();
    assert_eq!(conn.auth_kind, AuthKind::Oauth2RefreshToken);
    assert_eq!(p.seen("id")[0].path, "/oauth/authorize");
    let exchange = p.seen("api")[0].clone();
    assert_eq!(exchange.path, "/oauth/v1/token");
    let form = exchange.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["client_id"], "hubspot-app");
    assert_eq!(form["client_secret"], "hubspot-app-secret");
    let e = h.run("hubspot", "contacts").await;
    assert_eq!(e.status, ExecutionStatus::Completed, "{:?}", e.note);
    assert_eq!(e.counts.created, 1);
}
