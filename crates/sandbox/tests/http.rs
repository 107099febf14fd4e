//! End-to-end tests: real HTTP against a sandbox on 127.0.0.1, covering auth, every pagination
//! style, incremental filtering, each fault and the admin endpoints.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{json, Value};
use syncdesk_sandbox::{
    BadKind, BadRecord, Entity, Faults, RetryAfter, Sandbox, SandboxConfig, SchemaDrift,
};

fn config() -> SandboxConfig {
    SandboxConfig {
        customers: 1_234,
        products: 30,
        invoices: 300,
        payments: 200,
        ..Default::default()
    }
}

struct Api {
    sb: Sandbox,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn start(config: SandboxConfig) -> Api {
        let sb = Sandbox::start(config).await.expect("start sandbox");
        let http = reqwest::Client::new();
        let token = grant(&http, &sb).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        Api { sb, http, token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.base_url())
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("send")
    }

    async fn get_json(&self, path: &str) -> Value {
        let resp = self.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        resp.json().await.expect("json body")
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("send");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("json body")
    }
}

async fn grant(http: &reqwest::Client, sb: &Sandbox) -> Value {
    let resp = http
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("json")
}

async fn post_form(
    http: &reqwest::Client,
    sb: &Sandbox,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(form)
        .send()
        .await
        .expect("send");
    (resp.status(), resp.json().await.expect("json"))
}

fn ids(records: &Value) -> Vec<String> {
    records
        .as_array()
        .expect("array of records")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn all_ids(entity: Entity, n: usize) -> Vec<String> {
    (1..=n).map(|i| entity.id(i)).collect()
}

fn enc(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

/// Pages through one entity in the given style, returning ids in the order served.
async fn pull(
    api: &Api,
    style: &str,
    entity: &str,
    limit: usize,
    since: Option<&str>,
) -> Vec<String> {
    let since_q = since
        .map(|s| format!("&updated_since={}", enc(s)))
        .unwrap_or_default();
    let mut out = Vec::new();
    match style {
        "v1" => {
            let mut after = String::new();
            loop {
                let page = api
                    .get_json(&format!("/v1/{entity}?limit={limit}{after}{since_q}"))
                    .await;
                assert_eq!(page["object"], "list");
                assert_eq!(page["url"], format!("/v1/{entity}"));
                let got = ids(&page["data"]);
                out.extend(got.iter().cloned());
                if !page["has_more"].as_bool().expect("has_more") {
                    break;
                }
                after = format!("&starting_after={}", got.last().expect("non-empty page"));
            }
        }
        "next-cursor" => {
            let mut cursor = String::new();
            loop {
                let page = api
                    .get_json(&format!(
                        "/alt/next-cursor/{entity}?limit={limit}{cursor}{since_q}"
                    ))
                    .await;
                out.extend(ids(&page["items"]));
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = format!("&cursor={c}"),
                    None => {
                        assert!(page["next_cursor"].is_null());
                        break;
                    }
                }
            }
        }
        "page" => {
            let mut page_no = 1;
            loop {
                let page = api
                    .get_json(&format!(
                        "/alt/page/{entity}?page={page_no}&per_page={limit}{since_q}"
                    ))
                    .await;
                assert_eq!(page["page"], page_no);
                assert_eq!(page["per_page"], limit);
                let got = ids(&page["results"]);
                if got.is_empty() {
                    assert!(page_no > page["total_pages"].as_u64().expect("total_pages"));
                    break;
                }
                out.extend(got);
                page_no += 1;
            }
        }
        "offset" => {
            let mut offset = 0;
            loop {
                let page = api
                    .get_json(&format!(
                        "/alt/offset/{entity}?offset={offset}&limit={limit}{since_q}"
                    ))
                    .await;
                let got = ids(&page["records"]);
                offset += got.len();
                out.extend(got);
                if offset as u64 >= page["total"].as_u64().expect("total") {
                    break;
                }
            }
        }
        "link" => {
            let mut url = api.url(&format!("/alt/link/{entity}?limit={limit}{since_q}"));
            loop {
                let resp = api
                    .http
                    .get(&url)
                    .bearer_auth(&api.token)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), StatusCode::OK);
                let link = resp
                    .headers()
                    .get("link")
                    .map(|v| v.to_str().expect("ascii").to_owned());
                let body: Value = resp.json().await.expect("json");
                out.extend(ids(&body));
                let Some(link) = link else { break };
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                url = link[1..link.find('>').expect(">")].to_owned();
                assert!(url.starts_with(&api.sb.base_url()), "{url}");
            }
        }
        other => panic!("unknown style {other}"),
    }
    out
}

const STYLES: [&str; 5] = ["v1", "next-cursor", "page", "offset", "link"];

#[tokio::test]
async fn client_credentials_and_refresh_rotation() {
    let sb = Sandbox::start(config()).await.unwrap();
    let http = reqwest::Client::new();
    let first = grant(&http, &sb).await;
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 3_600);
    assert_eq!(first["scope"], "read");
    assert_eq!(first["refresh_token_expires_in"], 30 * 86_400);
    let at = first["access_token"].as_str().unwrap();
    let rt = first["refresh_token"].as_str().unwrap();
    assert!(at.starts_with("at_") && rt.starts_with("rt_"));

    let (status, second) = post_form(
        &http,
        &sb,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);

    // The used refresh token is gone; the rotated one works once.
    let (status, err) = post_form(
        &http,
        &sb,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");

    // JSON body with HTTP Basic client auth.
    let resp = http
        .post(format!("{}/oauth/token", sb.base_url()))
        .basic_auth("sandbox-client", Some("sandbox-secret"))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (status, err) = post_form(
        &http,
        &sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "nope"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"], "invalid_client");
    let (status, err) = post_form(&http, &sb, &[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "unsupported_grant_type");

    let stats = sb.stats();
    assert_eq!(
        (
            stats.token_grants,
            stats.refresh_grants,
            stats.failed_grants
        ),
        (1, 2, 3)
    );
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn expired_tokens_are_rejected_and_refresh_still_works() {
    let api = Api::start(SandboxConfig {
        token_ttl_secs: 60,
        ..config()
    })
    .await;
    assert_eq!(
        api.get("/v1/customers?limit=1").await.status(),
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    let resp = api.get("/v1/customers?limit=1").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "token expired");
    // A 401 is not a data request that consumes faults, but it is counted.
    assert_eq!(api.sb.stats().by_status.get(&401), Some(&1));

    // expire_tokens(): access tokens die now, refresh tokens live on.
    let fresh = grant(&api.http, &api.sb).await;
    api.sb.expire_tokens();
    let resp = api
        .http
        .get(api.url("/v1/customers"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = post_form(
        &api.http,
        &api.sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn refresh_tokens_expire() {
    let sb = Sandbox::start(SandboxConfig {
        refresh_ttl_secs: 100,
        ..config()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let t = grant(&http, &sb).await;
    tokio::time::advance(Duration::from_secs(101)).await;
    let (status, err) = post_form(
        &http,
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    assert_eq!(err["error_description"], "refresh token expired");
}

#[tokio::test]
async fn revoke_kills_access_and_refresh_tokens() {
    let api = Api::start(config()).await;
    let t = grant(&api.http, &api.sb).await;
    api.sb.revoke_tokens();
    let resp = api.get("/v1/customers").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (status, err) = post_form(
        &api.http,
        &api.sb,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // New credentials grants still work.
    grant(&api.http, &api.sb).await;
}

#[tokio::test]
async fn revoked_credentials_and_api_key() {
    let api = Api::start(SandboxConfig {
        api_key: Some("k3y".into()),
        ..config()
    })
    .await;
    let with_key = |key: &str| {
        api.http
            .get(api.url("/v1/products?limit=2"))
            .header("X-Api-Key", key.to_owned())
            .send()
    };
    assert_eq!(with_key("k3y").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        with_key("wrong").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let no_auth = api.http.get(api.url("/v1/products")).send().await.unwrap();
    assert_eq!(no_auth.status(), StatusCode::UNAUTHORIZED);

    api.sb.set_credentials_revoked(true);
    assert_eq!(
        with_key("k3y").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, err) = post_form(
        &api.http,
        &api.sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    // Tokens issued before the revocation keep working until they expire.
    assert_eq!(api.get("/v1/products").await.status(), StatusCode::OK);

    api.sb.set_credentials_revoked(false);
    assert_eq!(with_key("k3y").await.unwrap().status(), StatusCode::OK);
    grant(&api.http, &api.sb).await;
}

#[tokio::test]
async fn every_pagination_style_returns_every_id_once_in_order() {
    let api = Api::start(config()).await;
    for style in STYLES {
        for (entity, limit) in [
            ("customers", 1_000),
            ("customers", 97),
            ("products", 100),
            ("payments", 7),
        ] {
            let n = api.sb.count(entity.parse().unwrap());
            let got = pull(&api, style, entity, limit, None).await;
            assert_eq!(
                got,
                all_ids(entity.parse().unwrap(), n),
                "{style} {entity} limit {limit}"
            );
        }
    }
    let stats = api.sb.stats();
    assert_eq!(stats.by_status.get(&200), Some(&stats.data_requests));
}

#[tokio::test]
async fn default_limit_and_empty_collections() {
    let api = Api::start(SandboxConfig {
        products: 0,
        ..config()
    })
    .await;
    let page = api.get_json("/v1/customers").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 100);
    assert_eq!(page["has_more"], true);
    let empty = api.get_json("/v1/products").await;
    assert_eq!(
        (empty["data"].as_array().unwrap().len(), &empty["has_more"]),
        (0, &json!(false))
    );
    let pages = api.get_json("/alt/page/products?page=1").await;
    assert_eq!(pages["total_pages"], 0);
    let past_end = api
        .get_json("/alt/page/customers?page=99&per_page=100")
        .await;
    assert_eq!(past_end["results"], json!([]));
    assert_eq!(past_end["total_pages"], 13);
}

#[tokio::test]
async fn updated_since_includes_modified_records_in_every_style() {
    let api = Api::start(config()).await;
    // Base updated_at is 2026-01-01T00:00:00Z + n seconds.
    let since = "2026-01-01T00:20:00Z"; // record 1200 onwards
    let mut expected: Vec<String> = (1_200..=1_234).map(|n| Entity::Customers.id(n)).collect();
    for style in STYLES {
        assert_eq!(
            pull(&api, style, "customers", 10, Some(since)).await,
            expected,
            "{style}"
        );
    }

    assert!(api.sb.patch_record(
        Entity::Customers,
        "cus_00000007",
        json!({"name": "Patched Name"})
    ));
    assert!(!api
        .sb
        .patch_record(Entity::Customers, "cus_99999999", json!({})));
    api.sb.touch(Entity::Customers, &["cus_00000003".into()]);
    let patched = api.get_json("/v1/customers/cus_00000007").await;
    assert_eq!(patched["name"], "Patched Name");
    let touched = api.get_json("/v1/customers/cus_00000003").await;
    let (t7, t3) = (
        patched["updated_at"].as_str().unwrap(),
        touched["updated_at"].as_str().unwrap(),
    );
    assert!(t7 > "2026-01-01T00:20:34Z" && t3 > t7, "{t7} {t3}");

    expected.splice(0..0, ["cus_00000003".to_owned(), "cus_00000007".to_owned()]);
    for style in STYLES {
        assert_eq!(
            pull(&api, style, "customers", 10, Some(since)).await,
            expected,
            "{style}"
        );
    }
    // Only the modified records are newer than the patch time.
    let latest = pull(&api, "v1", "customers", 10, Some(t7)).await;
    assert_eq!(latest, ["cus_00000003", "cus_00000007"]);
    let latest = pull(&api, "v1", "customers", 10, Some(t3)).await;
    assert_eq!(latest, ["cus_00000003"]);
    // Offsets with a non-UTC zone are understood.
    let same = pull(
        &api,
        "offset",
        "customers",
        10,
        Some("2026-01-01T01:20:00+01:00"),
    )
    .await;
    assert_eq!(same, expected);

    let touched = api.sb.touch_fraction(Entity::Invoices, 0.1);
    assert_eq!(touched.len(), 30);
    // Modified records are stamped after every base timestamp of every entity (the largest
    // has 1234 records), so a bound past the last base invoice (300) finds exactly them.
    let newest = pull(&api, "link", "invoices", 7, Some("2026-01-01T00:05:01Z")).await;
    assert_eq!(newest, touched);
}

#[tokio::test]
async fn get_by_id() {
    let api = Api::start(config()).await;
    let rec = api.get_json("/v1/invoices/in_00000042").await;
    assert_eq!(rec["id"], "in_00000042");
    assert_eq!(rec["object"], "invoice");
    assert_eq!(
        Some(rec.clone()),
        api.sb.record(Entity::Invoices, "in_00000042")
    );
    let listed = api
        .get_json("/v1/invoices?starting_after=in_00000041&limit=1")
        .await;
    assert_eq!(listed["data"][0], rec);
    let customer = rec["customer"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/v1/customers/{customer}")).await.status(),
        StatusCode::OK
    );

    for path in [
        "/v1/invoices/in_00000301",
        "/v1/invoices/cus_00000001",
        "/v1/widgets/w_1",
        "/v1/widgets",
    ] {
        let resp = api.get(path).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "not_found");
    }
    // Unknown-entity lists are not get-by-id requests.
    assert_eq!(api.sb.stats().get_by_id, 5);
}

#[tokio::test]
async fn bad_query_parameters_name_the_parameter() {
    let api = Api::start(config()).await;
    for (path, param) in [
        ("/v1/customers?limit=0", "limit"),
        ("/v1/customers?limit=1001", "limit"),
        ("/v1/customers?limit=ten", "limit"),
        ("/v1/customers?updated_since=yesterday", "updated_since"),
        ("/v1/customers?starting_after=in_00000001", "starting_after"),
        ("/v1/customers?starting_after=cus_1", "starting_after"),
        ("/alt/next-cursor/customers?cursor=abc", "cursor"),
        ("/alt/page/customers?page=0", "page"),
        ("/alt/page/customers?per_page=5000", "per_page"),
        ("/alt/offset/customers?offset=-1", "offset"),
        ("/alt/link/customers?after=x", "after"),
    ] {
        let resp = api.get(path).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}");
        assert!(
            body["message"].as_str().unwrap().contains(param),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn error_and_rate_limit_bursts() {
    let api = Api::start(config()).await;
    api.sb.set_faults(Faults {
        error_burst: 2,
        rate_limit_burst: 1,
        ..Faults::default()
    });
    // An unauthenticated request is refused before faults and consumes nothing.
    let anon = api.http.get(api.url("/v1/customers")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let statuses = [
        api.get("/v1/customers").await.status(),
        api.get("/alt/page/customers").await.status(),
        api.get("/v1/customers").await.status(),
        api.get("/v1/customers").await.status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK
        ]
    );
    assert_eq!(api.sb.faults().error_burst, 0);
    api.sb.update_faults(|f| {
        f.error_burst = 1;
        f.error_status = 500;
    });
    assert_eq!(
        api.get("/v1/customers").await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let stats = api.sb.stats();
    assert_eq!(stats.data_requests, 6);
    assert_eq!(
        stats.by_status,
        [(200, 1), (401, 1), (429, 1), (500, 1), (503, 2)].into()
    );
    assert_eq!(stats.records_served, 100);
}

#[tokio::test]
async fn retry_after_seconds_and_http_date() {
    let api = Api::start(config()).await;
    api.sb.set_faults(Faults {
        rate_limit_burst: 1,
        retry_after: RetryAfter::Seconds(7),
        ..Faults::default()
    });
    let resp = api.get("/v1/customers").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");

    api.sb.set_faults(Faults {
        rate_limit_burst: 1,
        retry_after: RetryAfter::HttpDate(120),
        ..Faults::default()
    });
    let resp = api.get("/v1/customers").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let date = httpdate::parse_http_date(resp.headers()["retry-after"].to_str().unwrap()).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap_or_default();
    assert!((100..=121).contains(&ahead.as_secs()), "{ahead:?}");

    api.sb.set_faults(Faults {
        rate_limit_burst: 1,
        ..Faults::default()
    });
    let resp = api.get("/v1/customers").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn rates_are_deterministic_per_seed() {
    async fn outcomes(seed: u64) -> Vec<u16> {
        let api = Api::start(SandboxConfig { seed, ..config() }).await;
        api.sb.set_faults(Faults {
            error_rate: 0.2,
            rate_limit_rate: 0.2,
            ..Faults::default()
        });
        let mut out = Vec::new();
        for _ in 0..60 {
            out.push(api.get("/v1/products?limit=1").await.status().as_u16());
        }
        out
    }
    let a = outcomes(5).await;
    assert_eq!(a, outcomes(5).await);
    assert_ne!(a, outcomes(6).await);
    let errors = a.iter().filter(|&&s| s == 503).count();
    let limited = a.iter().filter(|&&s| s == 429).count();
    assert!(
        (3..=25).contains(&errors) && (2..=25).contains(&limited),
        "{a:?}"
    );
}

#[tokio::test]
async fn malformed_bodies() {
    let api = Api::start(config()).await;
    api.sb.set_faults(Faults {
        malformed_burst: 1,
        ..Faults::default()
    });
    let resp = api.get("/alt/offset/customers").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    api.get_json("/alt/offset/customers").await;
}

#[tokio::test(start_paused = true)]
async fn latency_and_hang_use_tokio_time() {
    let api = Api::start(config()).await;
    api.sb.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    let t = tokio::time::Instant::now();
    api.get_json("/v1/customers?limit=1").await;
    assert!(
        t.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        t.elapsed()
    );

    api.sb.set_faults(Faults {
        hang_after: Some(2),
        hang_ms: 60_000,
        ..Faults::default()
    });
    let t = tokio::time::Instant::now();
    api.get_json("/v1/customers?limit=1").await;
    api.get_json("/v1/customers?limit=1").await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // A client with a timeout sees the hang as a timeout...
    let timed_out = api
        .http
        .get(api.url("/v1/customers?limit=1"))
        .bearer_auth(&api.token)
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    // ...and a patient one gets the normal answer once the hang is over.
    let t = tokio::time::Instant::now();
    api.get_json("/v1/customers?limit=1").await;
    assert!(t.elapsed() >= Duration::from_secs(60), "{:?}", t.elapsed());
}

#[tokio::test]
async fn bad_records_of_every_kind() {
    let api = Api::start(config()).await;
    let bad = |entity: Entity, n: usize, kind: BadKind| BadRecord {
        entity,
        id: entity.id(n),
        kind,
    };
    api.sb.set_faults(Faults {
        bad_records: vec![
            bad(Entity::Customers, 2, BadKind::NullRequired),
            bad(Entity::Customers, 3, BadKind::InvalidDate),
            bad(Entity::Customers, 4, BadKind::DuplicateKey),
            bad(Entity::Customers, 5, BadKind::WrongType),
            bad(Entity::Products, 2, BadKind::NullRequired),
            bad(Entity::Products, 3, BadKind::InvalidDate),
            bad(Entity::Products, 4, BadKind::DuplicateKey),
            bad(Entity::Products, 5, BadKind::WrongType),
            bad(Entity::Invoices, 2, BadKind::NullRequired),
            bad(Entity::Invoices, 3, BadKind::InvalidDate),
            bad(Entity::Invoices, 4, BadKind::DuplicateKey),
            bad(Entity::Invoices, 5, BadKind::WrongType),
            bad(Entity::Invoices, 6, BadKind::DanglingReference),
            bad(Entity::Payments, 2, BadKind::NullRequired),
            bad(Entity::Payments, 3, BadKind::InvalidDate),
            bad(Entity::Payments, 5, BadKind::WrongType),
            bad(Entity::Payments, 6, BadKind::DanglingReference),
        ],
        ..Faults::default()
    });
    let page = |entity: &'static str| {
        let api = &api;
        async move {
            let v = api.get_json(&format!("/v1/{entity}?limit=6")).await;
            v["data"].as_array().unwrap().clone()
        }
    };
    let c = page("customers").await;
    assert!(c[1]["email"].is_null());
    assert_eq!(c[2]["created_at"], "31/02/2026");
    assert_eq!(c[3]["email"], c[2]["email"]);
    assert_eq!(c[4]["phone"], 5_551_234);
    assert!(c[5]["email"].is_string() && c[5]["phone"].is_string());

    let p = page("products").await;
    assert!(p[1]["name"].is_null());
    assert_eq!(p[2]["released_on"], "not-a-date");
    assert_eq!(p[3]["sku"], "SKU-00000003");
    assert!(p[4]["price_cents"].as_str().unwrap().contains('.'));

    let i = page("invoices").await;
    assert!(i[1]["number"].is_null());
    assert_eq!(i[2]["issued_at"], "31/02/2026");
    assert_eq!(i[3]["number"], "INV-00000003");
    assert!(i[4]["amount_cents"].is_string());
    assert_eq!(i[5]["customer"], "cus_99999999");

    let pay = page("payments").await;
    assert!(pay[1]["amount_cents"].is_null());
    assert_eq!(pay[2]["paid_at"], "31/02/2026");
    assert!(pay[4]["amount_cents"].is_string());
    assert_eq!(pay[5]["invoice"], "in_99999999");

    // get-by-id and record() see the same corruption.
    let one = api.get_json("/v1/invoices/in_00000006").await;
    assert_eq!(one["customer"], "cus_99999999");
    assert_eq!(api.sb.record(Entity::Invoices, "in_00000006"), Some(one));
}

#[tokio::test]
async fn bad_record_rate() {
    let api = Api::start(config()).await;
    let clean = api.get_json("/v1/invoices?limit=300").await["data"].clone();
    api.sb.set_faults(Faults {
        bad_record_rate: 0.1,
        ..Faults::default()
    });
    let dirty = api.get_json("/v1/invoices?limit=300").await["data"].clone();
    let changed = (0..300).filter(|&i| clean[i] != dirty[i]).count();
    assert!((12..=50).contains(&changed), "{changed}");
    // Same choice every time.
    assert_eq!(api.get_json("/v1/invoices?limit=300").await["data"], dirty);
}

#[tokio::test]
async fn schema_drift_rename_and_retype() {
    let api = Api::start(config()).await;
    api.sb.set_faults(Faults {
        schema_drift: vec![
            SchemaDrift {
                entity: Entity::Customers,
                rename: Some(("email".into(), "email_address".into())),
                retype: None,
            },
            SchemaDrift {
                entity: Entity::Invoices,
                rename: None,
                retype: Some("amount_cents".into()),
            },
            SchemaDrift {
                entity: Entity::Products,
                rename: None,
                retype: Some("sku".into()),
            },
        ],
        ..Faults::default()
    });
    let customers = api.get_json("/alt/offset/customers?limit=50").await;
    for c in customers["records"].as_array().unwrap() {
        assert!(
            c.get("email").is_none() && c["email_address"].is_string(),
            "{c}"
        );
    }
    let invoices = api.get_json("/v1/invoices?limit=50").await;
    for i in invoices["data"].as_array().unwrap() {
        let amount = i["amount_cents"].as_str().unwrap();
        assert!(amount.parse::<u64>().is_ok(), "{i}");
    }
    let product = api.get_json("/v1/products/prod_00000001").await;
    assert_eq!(product["sku"], 12);
}

#[tokio::test]
async fn same_seed_same_bytes() {
    async fn bytes(seed: u64) -> Vec<String> {
        let api = Api::start(SandboxConfig { seed, ..config() }).await;
        api.sb.set_faults(Faults {
            bad_record_rate: 0.05,
            ..Faults::default()
        });
        let mut out = vec![api
            .http
            .post(api.url("/oauth/token"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()];
        for path in [
            "/v1/customers?limit=1000",
            "/v1/invoices?limit=300",
            "/alt/next-cursor/payments?limit=10",
            "/v1/products/prod_00000003",
        ] {
            out.push(api.get(path).await.text().await.unwrap());
        }
        out.push(grant(&api.http, &api.sb).await["access_token"].to_string());
        out
    }
    let a = bytes(11).await;
    assert_eq!(a, bytes(11).await);
    let b = bytes(12).await;
    for i in 1..a.len() {
        assert_ne!(a[i], b[i], "part {i}");
    }
}

#[tokio::test]
async fn admin_endpoints() {
    let api = Api::start(config()).await;
    use reqwest::Method;
    let faults = json!({
        "error_burst": 1,
        "retry_after": {"http_date": 30},
        "bad_records": [{"entity": "customers", "id": "cus_00000001", "kind": "null_required"}],
        "schema_drift": [{"entity": "products", "rename": ["name", "title"]}]
    });
    let put = api.admin(Method::PUT, "/_admin/faults", Some(faults)).await;
    assert_eq!(put["error_burst"], 1);
    assert_eq!(api.sb.faults().retry_after, RetryAfter::HttpDate(30));
    assert_eq!(api.admin(Method::GET, "/_admin/faults", None).await, put);
    let bad = api
        .http
        .put(api.url("/_admin/faults"))
        .body("{")
        .header("content-type", "application/json");
    assert_eq!(bad.send().await.unwrap().status(), StatusCode::BAD_REQUEST);

    assert_eq!(
        api.get("/v1/customers").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let page = api.get_json("/v1/customers?limit=1").await;
    assert!(page["data"][0]["email"].is_null());
    let stats = api.admin(Method::GET, "/_admin/stats", None).await;
    assert_eq!(stats["data_requests"], 2);
    assert_eq!(stats["by_status"]["503"], 1);
    assert_eq!(stats["records_served"], 1);
    api.admin(Method::POST, "/_admin/stats/reset", None).await;
    assert_eq!(api.sb.stats(), Default::default());

    let patched = api
        .admin(
            Method::POST,
            "/_admin/records/invoices/in_00000002",
            Some(json!({"status": "void"})),
        )
        .await;
    assert_eq!(patched["status"], "void");
    assert_eq!(
        api.get_json("/v1/invoices/in_00000002").await["status"],
        "void"
    );
    let missing = api
        .http
        .post(api.url("/_admin/records/invoices/in_00009999"))
        .json(&json!({}))
        .send();
    assert_eq!(missing.await.unwrap().status(), StatusCode::NOT_FOUND);
    let viewed = api
        .admin(Method::GET, "/_admin/records/products/prod_00000001", None)
        .await;
    assert!(viewed.get("name").is_none() && viewed["title"].is_string());

    let touched = api
        .admin(
            Method::POST,
            "/_admin/touch",
            Some(json!({"entity": "payments", "fraction": 0.05})),
        )
        .await;
    let touched: Vec<String> = serde_json::from_value(touched["ids"].clone()).unwrap();
    assert_eq!(touched.len(), 10);
    let recent = pull(&api, "v1", "payments", 100, Some("2026-01-01T00:03:21Z")).await;
    assert_eq!(recent, touched);

    api.admin(Method::POST, "/_admin/tokens/expire", None).await;
    let expired: Value = api.get("/v1/customers").await.json().await.unwrap();
    assert_eq!(expired["error_description"], "token expired");
    let t = grant(&api.http, &api.sb).await;
    api.admin(Method::POST, "/_admin/tokens/revoke", None).await;
    let revoked = api
        .http
        .get(api.url("/v1/customers"))
        .bearer_auth(t["access_token"].as_str().unwrap());
    assert_eq!(
        revoked.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    api.admin(Method::POST, "/_admin/credentials/revoke", None)
        .await;
    let (status, _) = post_form(
        &api.http,
        &api.sb,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    api.admin(Method::POST, "/_admin/credentials/restore", None)
        .await;
    grant(&api.http, &api.sb).await;

    let stats = api.sb.stats();
    assert_eq!((stats.token_grants, stats.failed_grants), (2, 1));
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sb = Sandbox::start(config()).await.unwrap();
    let url = format!("{}/oauth/token", sb.base_url());
    assert!(sb.base_url().starts_with("http://127.0.0.1:") && !sb.base_url().ends_with('/'));
    let http = reqwest::Client::new();
    http.post(&url).send().await.unwrap();
    sb.shutdown().await;
    assert!(reqwest::Client::new().post(&url).send().await.is_err());

    let refused = Sandbox::start_on("0.0.0.0:0".parse().unwrap(), config()).await;
    assert_eq!(
        refused.unwrap_err().kind(),
        std::io::ErrorKind::InvalidInput
    );

    let sb = Sandbox::start(config()).await.unwrap();
    let token = sb.cancel_token();
    let url = sb.base_url();
    token.cancel();
    sb.wait().await;
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}

/// RFC 7636 Appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:45678/callback";

/// `/oauth/authorize` with `params`, not following the redirect: (status, Location).
async fn authorize(sb: &Sandbox, params: &[(&str, &str)]) -> (StatusCode, Option<url::Url>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/oauth/authorize", sb.base_url()))
        .query(params)
        .send()
        .await
        .expect("send");
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|l| url::Url::parse(l.to_str().unwrap()).unwrap());
    (resp.status(), location)
}

async fn exchange(
    http: &reqwest::Client,
    sb: &Sandbox,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> (StatusCode, Value) {
    post_form(
        http,
        sb,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("client_id", "sandbox-client"),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn query(u: &url::Url, key: &str) -> Option<String> {
    u.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn code_for(sb: &Sandbox, redirect: &str) -> String {
    let (status, to) = authorize(
        sb,
        &[
            ("response_type", "code"),
            ("client_id", "sandbox-client"),
            ("redirect_uri", redirect),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "st4te"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let to = to.unwrap();
    assert!(to.as_str().starts_with(redirect), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("st4te"));
    query(&to, "code").expect("a code")
}

#[tokio::test]
async fn authorization_code_with_pkce_is_checked_and_single_use() {
    let sb = Sandbox::start(config()).await.unwrap();
    let http = reqwest::Client::new();
    let ok_params = |redirect: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", "sandbox-client"),
            ("redirect_uri", redirect),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "st4te"),
        ]
    };
    // Never redirected off the machine, nor for an unknown client (RFC 6749 §4.1.2.1).
    for (k, v) in [
        ("redirect_uri", "https://evil.example/callback"),
        ("redirect_uri", "http://127.0.0.1.evil.example:80/cb"),
        ("client_id", "someone-else"),
    ] {
        let mut p = ok_params(REDIRECT);
        p.retain(|(key, _)| *key != k);
        p.push((k, v));
        let (status, to) = authorize(&sb, &p).await;
        assert_eq!((status, to), (StatusCode::BAD_REQUEST, None), "{k}={v}");
    }
    // PKCE is required; the error goes back to the app with its state.
    let mut p = ok_params(REDIRECT);
    p.retain(|(k, _)| !k.starts_with("code_challenge"));
    let (status, to) = authorize(&sb, &p).await;
    assert_eq!(status, StatusCode::FOUND);
    let to = to.unwrap();
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&to, "state").as_deref(), Some("st4te"));
    // IPv6 loopback is a loopback too.
    code_for(&sb, "http://[::1]:45678/callback").await;

    // A wrong verifier spends the code: the right one cannot follow.
    let code = code_for(&sb, REDIRECT).await;
    let (status, err) = exchange(&http, &sb, &code, &"x".repeat(43), REDIRECT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "invalid_grant");
    assert!(err["error_description"]
        .as_str()
        .unwrap()
        .contains("code_verifier"));
    let (_, err) = exchange(&http, &sb, &code, VERIFIER, REDIRECT).await;
    assert!(err["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    // The redirect URI must be the one the code was issued for.
    let code = code_for(&sb, REDIRECT).await;
    let (_, err) = exchange(
        &http,
        &sb,
        &code,
        VERIFIER,
        "http://127.0.0.1:45679/callback",
    )
    .await;
    assert!(err["error_description"]
        .as_str()
        .unwrap()
        .contains("redirect_uri"));
    // All right: a rotating pair, as from any grant.
    let code = code_for(&sb, REDIRECT).await;
    let (status, tokens) = exchange(&http, &sb, &code, VERIFIER, REDIRECT).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("rt_"));
    assert_eq!(sb.stats().code_grants, 1);

    // The consent fault: the user refuses at the provider.
    sb.set_consent_denied(true);
    let (_, to) = authorize(&sb, &ok_params(REDIRECT)).await;
    assert_eq!(
        query(&to.unwrap(), "error").as_deref(),
        Some("access_denied")
    );
}
