//! Provider personas (issue 15, point 4) over real HTTP on 127.0.0.1: each persona's paging
//! ends, its change filter returns only changed records, it refuses bad credentials in its own
//! words, sends its rate-limit headers and applies the sandbox's switchable faults.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest as _;
use syncdesk_sandbox::{
    BadKind, BadRecord, Entity, Faults, Persona, RetryAfter, Sandbox, SandboxConfig, SchemaDrift,
};

const STRIPE_KEY: &str = "sk_test_syncdesk_sandbox";
const HUBSPOT_TOKEN: &str = "pat-na1-syncdesk-sandbox";
/// Generated records change at 2026-01-01T00:00:00Z + their number of seconds; touched ones
/// after every generated one, from + (largest collection + 1) s: 250 customers here.
const AFTER_BASE: i64 = 1_767_225_600 + 251;

async fn start(persona: Persona) -> Sandbox {
    Sandbox::start(SandboxConfig {
        persona: Some(persona),
        customers: 250,
        products: 30,
        invoices: 220,
        payments: 120,
        ..Default::default()
    })
    .await
    .expect("start persona")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Browser sign-in with PKCE, then the code exchange: (access token, refresh token).
async fn sign_in(
    http: &reqwest::Client,
    sb: &Sandbox,
    authorize: &str,
    token: &str,
) -> (String, String) {
    let verifier = "a".repeat(64);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:9/callback";
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = no_redirects
        .get(format!("{}{authorize}", sb.base_url()))
        .query(&[
            ("client_id", "sandbox-client"),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "xyz"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = resp.headers()["location"].to_str().expect("location");
    let url = url::Url::parse(location).expect("redirect url");
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let r = send(http.post(format!("{}{token}", sb.base_url())).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("client_id", "sandbox-client"),
        ("code_verifier", verifier.as_str()),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (
        r.body["access_token"].as_str().expect("access").to_owned(),
        r.body["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned(),
    )
}

// ---------------------------------------------------------------- Stripe

fn stripe(http: &reqwest::Client, sb: &Sandbox, path: &str) -> reqwest::RequestBuilder {
    http.get(format!("{}{path}", sb.base_url()))
        .bearer_auth(STRIPE_KEY)
}

#[tokio::test]
async fn i15_stripe_lists_page_to_the_end_in_stripe_shapes() {
    let sb = start(Persona::Stripe).await;
    let http = reqwest::Client::new();
    for (path, entity, prefix) in [
        ("/v1/customers", Entity::Customers, "cus_"),
        ("/v1/products", Entity::Products, "prod_"),
        ("/v1/invoices", Entity::Invoices, "in_"),
        ("/v1/charges", Entity::Payments, "ch_"),
    ] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut req = stripe(&http, &sb, path).query(&[("limit", "100")]);
            if let Some(a) = &after {
                req = req.query(&[("starting_after", a)]);
            }
            let r = send(req).await;
            assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
            assert_eq!(r.body["object"], "list");
            assert_eq!(r.body["url"], path);
            let data = r.body["data"].as_array().expect("data").clone();
            for item in &data {
                let id = item["id"].as_str().expect("id");
                assert!(id.starts_with(prefix), "{id}");
                assert!(item["created"].is_i64(), "{item}");
                assert_eq!(item["livemode"], false);
                seen.push(id.to_owned());
            }
            if r.body["has_more"] == false {
                break;
            }
            after = seen.last().cloned();
        }
        assert_eq!(seen.len(), sb.count(entity), "{path}");
        assert_eq!(seen[0], sb.served_id(entity, 1));
    }
    // Stripe's default page is 10 and its maximum 100.
    let r = send(stripe(&http, &sb, "/v1/products")).await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(10));
    let r = send(stripe(&http, &sb, "/v1/products?limit=101")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    assert_eq!(r.body["error"]["param"], "limit");
    // Retrieve, and a missing id in Stripe's words.
    let r = send(stripe(&http, &sb, "/v1/invoices/in_00000007")).await;
    assert_eq!(r.body["object"], "invoice");
    assert_eq!(r.body["number"], "INV-00000007");
    assert!(r.body["total"].is_u64());
    let r = send(stripe(&http, &sb, "/v1/customers/cus_99999999")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn i15_stripe_events_list_only_changes_since_created_gte() {
    let sb = start(Persona::Stripe).await;
    let http = reqwest::Client::new();
    let since = AFTER_BASE.to_string();
    let events = |ty: &'static str| {
        stripe(&http, &sb, "/v1/events").query(&[
            ("type", ty),
            ("created[gte]", since.as_str()),
            ("limit", "2"),
        ])
    };
    let r = send(events("customer.*")).await;
    assert_eq!(r.body["data"], json!([]), "nothing changed yet");

    let touched = sb.touch_fraction(Entity::Customers, 0.02);
    sb.patch_record(Entity::Invoices, "in_00000003", json!({"status": "void"}));
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut req = events("customer.*");
        if let Some(a) = &after {
            req = req.query(&[("starting_after", a)]);
        }
        let r = send(req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let data = r.body["data"].as_array().expect("data").clone();
        for e in &data {
            assert_eq!(e["object"], "event");
            assert_eq!(e["type"], "customer.updated");
            assert!(e["created"].as_i64().expect("created") >= AFTER_BASE);
            assert_eq!(e["data"]["object"]["object"], "customer");
            ids.push(e["data"]["object"]["id"].as_str().expect("id").to_owned());
        }
        if r.body["has_more"] == false {
            break;
        }
        after = data
            .last()
            .map(|e| e["id"].as_str().unwrap_or_default().to_owned());
    }
    ids.sort();
    assert_eq!(ids, touched, "exactly the touched customers");

    let r = send(events("invoice.*")).await;
    let data = r.body["data"].as_array().expect("data");
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["data"]["object"]["status"], "void");
    // Without a time bound the feed also holds every record's creation, newest first.
    let r = send(stripe(
        &http,
        &sb,
        "/v1/events?type=product.created&limit=3",
    ))
    .await;
    let created: Vec<i64> = r.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|e| e["created"].as_i64())
        .collect();
    assert_eq!(created.len(), 3);
    assert!(created.windows(2).all(|w| w[0] > w[1]), "{created:?}");
}

#[tokio::test]
async fn i15_stripe_refuses_missing_wrong_and_revoked_keys() {
    let sb = start(Persona::Stripe).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/customers", sb.base_url());
    let r = send(http.get(&url)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["type"], "invalid_request_error");
    let r = send(http.get(&url).bearer_auth("sk_test_wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Stripe also takes the key as the Basic user name.
    let r = send(http.get(&url).basic_auth(STRIPE_KEY, Some(""))).await;
    assert_eq!(r.status, StatusCode::OK);
    sb.set_credentials_revoked(true);
    let r = send(http.get(&url).bearer_auth(STRIPE_KEY)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"]["code"], "api_key_expired");
    let stats = sb.stats();
    assert_eq!(stats.by_status.get(&401), Some(&3));
}

#[tokio::test]
async fn i15_stripe_faults_come_in_stripe_shape() {
    let sb = start(Persona::Stripe).await;
    let http = reqwest::Client::new();
    sb.update_faults(|f| {
        f.error_burst = 1;
        f.rate_limit_burst = 1;
        f.retry_after = RetryAfter::Seconds(2);
        f.malformed_burst = 1;
    });
    let r = send(stripe(&http, &sb, "/v1/customers")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["error"]["type"], "api_error");
    let r = send(stripe(&http, &sb, "/v1/customers")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"]["code"], "rate_limit");
    assert_eq!(header(&r, "retry-after"), "2");
    let r = send(stripe(&http, &sb, "/v1/customers")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_string(), "a cut-off body: {}", r.body);

    sb.set_faults(Faults {
        bad_records: vec![
            BadRecord {
                entity: Entity::Invoices,
                id: "in_00000002".into(),
                kind: BadKind::WrongType,
            },
            BadRecord {
                entity: Entity::Payments,
                id: "pay_00000001".into(),
                kind: BadKind::DanglingReference,
            },
        ],
        schema_drift: vec![SchemaDrift {
            entity: Entity::Customers,
            rename: Some(("email".into(), "email_address".into())),
            retype: None,
        }],
        ..Faults::default()
    });
    let r = send(stripe(&http, &sb, "/v1/invoices/in_00000002")).await;
    assert!(r.body["total"].is_string(), "{}", r.body["total"]);
    let r = send(stripe(&http, &sb, "/v1/charges/ch_00000001")).await;
    assert_eq!(r.body["customer"], "cus_99999999");
    let r = send(stripe(&http, &sb, "/v1/customers?limit=1")).await;
    let c = &r.body["data"][0];
    assert!(
        c.get("email").is_none() && c["email_address"].is_string(),
        "{c}"
    );
}

// ---------------------------------------------------------------- Xero

async fn xero_token(http: &reqwest::Client, sb: &Sandbox) -> (String, String) {
    sign_in(http, sb, "/identity/connect/authorize", "/connect/token").await
}

fn xero(
    http: &reqwest::Client,
    sb: &Sandbox,
    token: &str,
    tenant: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    http.get(format!("{}/api.xro/2.0{path}", sb.base_url()))
        .bearer_auth(token)
        .header("xero-tenant-id", tenant)
        .header("accept", "application/json")
}

async fn xero_tenant(http: &reqwest::Client, sb: &Sandbox, token: &str) -> String {
    let r = send(
        http.get(format!("{}/connections", sb.base_url()))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body[0]["tenantType"], "ORGANISATION");
    r.body[0]["tenantId"].as_str().expect("tenant").to_owned()
}

#[tokio::test]
async fn i15_xero_pages_of_100_where_filters_and_msjson_dates() {
    let sb = start(Persona::Xero).await;
    let http = reqwest::Client::new();
    let (token, _) = xero_token(&http, &sb).await;
    let tenant = xero_tenant(&http, &sb, &token).await;
    let mut total = 0;
    for page in 1.. {
        let r = send(xero(&http, &sb, &token, &tenant, "/Contacts").query(&[("page", page)])).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["Status"], "OK");
        let n = r.body["Contacts"].as_array().expect("contacts").len();
        total += n;
        if n < 100 {
            break;
        }
    }
    assert_eq!(total, 250);
    let r = send(xero(&http, &sb, &token, &tenant, "/Items")).await;
    let items = r.body["Items"].as_array().expect("items");
    assert_eq!(items.len(), 30, "items are never paged");
    let date = items[0]["UpdatedDateUTC"].as_str().expect("date");
    assert!(
        date.starts_with("/Date(") && date.ends_with("+0000)/"),
        "{date}"
    );

    // Every 10th invoice is a bill; the catalog's where filter keeps sales invoices.
    let mut sales = 0;
    for page in 1..=3 {
        let r = send(
            xero(&http, &sb, &token, &tenant, "/Invoices")
                .query(&[("where", "Type==\"ACCREC\""), ("page", &page.to_string())]),
        )
        .await;
        let invoices = r.body["Invoices"].as_array().expect("invoices");
        assert!(invoices.iter().all(|i| i["Type"] == "ACCREC"));
        sales += invoices.len();
    }
    assert_eq!(sales, 220 - 22);
    let r = send(
        xero(&http, &sb, &token, &tenant, "/Payments")
            .query(&[("where", "PaymentType==\"ACCRECPAYMENT\""), ("page", "1")]),
    )
    .await;
    let payments = r.body["Payments"].as_array().expect("payments");
    assert!(!payments.is_empty() && payments.len() < 120);
    let r =
        send(xero(&http, &sb, &token, &tenant, "/Invoices").query(&[("where", "Type LIKE 'x'")]))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["Type"], "ValidationException");

    // Get by id answers in the same envelope.
    let id = sb.served_id(Entity::Customers, 7);
    let r = send(xero(
        &http,
        &sb,
        &token,
        &tenant,
        &format!("/Contacts/{id}"),
    ))
    .await;
    assert_eq!(r.body["Contacts"][0]["ContactID"], id.as_str());
    let r = send(xero(
        &http,
        &sb,
        &token,
        &tenant,
        "/Contacts/00000000-0000-4000-8000-000000000007",
    ))
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn i15_xero_if_modified_since_returns_only_changed_records() {
    let sb = start(Persona::Xero).await;
    let http = reqwest::Client::new();
    let (token, _) = xero_token(&http, &sb).await;
    let tenant = xero_tenant(&http, &sb, &token).await;
    let since = "2026-01-01T00:04:11Z";
    let changed = |path: &'static str| {
        xero(&http, &sb, &token, &tenant, path)
            .header("If-Modified-Since", since)
            .query(&[("page", "1")])
    };
    let r = send(changed("/Contacts")).await;
    assert_eq!(r.body["Contacts"], json!([]));
    let touched = sb.touch_fraction(Entity::Customers, 0.03);
    sb.patch_record(
        Entity::Products,
        "prod_00000004",
        json!({"name": "Renamed"}),
    );
    let r = send(changed("/Contacts")).await;
    let ids: Vec<&str> = r.body["Contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter_map(|c| c["ContactID"].as_str())
        .collect();
    let expected: Vec<String> = touched
        .iter()
        .filter_map(|id| Entity::Customers.parse_id(id))
        .map(|n| sb.served_id(Entity::Customers, n))
        .collect();
    assert_eq!(ids, expected);
    let r = send(changed("/Items")).await;
    assert_eq!(r.body["Items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["Items"][0]["Name"], "Renamed");
    // An HTTP date works too.
    let r = send(
        xero(&http, &sb, &token, &tenant, "/Items")
            .header("If-Modified-Since", "Thu, 01 Jan 2026 00:04:11 GMT"),
    )
    .await;
    assert_eq!(r.body["Items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn i15_xero_needs_the_tenant_header_and_rotates_refresh_tokens() {
    let sb = start(Persona::Xero).await;
    let http = reqwest::Client::new();
    let (token, refresh) = xero_token(&http, &sb).await;
    let tenant = xero_tenant(&http, &sb, &token).await;
    let url = format!("{}/api.xro/2.0/Contacts", sb.base_url());
    let r = send(http.get(&url).bearer_auth(&token)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["Title"], "Forbidden");
    let r = send(
        http.get(&url)
            .bearer_auth(&token)
            .header("xero-tenant-id", "00000000-0000-4000-8000-000000000000"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(http.get(&url).header("xero-tenant-id", &tenant)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["Detail"], "AuthenticationUnsuccessful");

    sb.expire_tokens();
    let r = send(xero(&http, &sb, &token, &tenant, "/Contacts")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["Detail"]
        .as_str()
        .unwrap_or_default()
        .starts_with("TokenExpired"));
    // A public (PKCE) client refreshes without a secret; each refresh token works once.
    let refresh_form = |rt: &str| {
        vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), rt.to_owned()),
            ("client_id".to_owned(), "sandbox-client".to_owned()),
        ]
    };
    let token_url = format!("{}/connect/token", sb.base_url());
    let r = send(http.post(&token_url).form(&refresh_form(&refresh))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fresh = r.body["access_token"].as_str().expect("access").to_owned();
    assert_ne!(r.body["refresh_token"].as_str(), Some(refresh.as_str()));
    let r = send(http.post(&token_url).form(&refresh_form(&refresh))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    let r = send(xero(&http, &sb, &fresh, &tenant, "/Contacts")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn i15_xero_rate_limit_headers_and_its_429() {
    let sb = start(Persona::Xero).await;
    let http = reqwest::Client::new();
    let (token, _) = xero_token(&http, &sb).await;
    let tenant = xero_tenant(&http, &sb, &token).await;
    let r = send(xero(&http, &sb, &token, &tenant, "/Items")).await;
    assert_eq!(header(&r, "x-minlimit-remaining"), "58");
    assert_eq!(header(&r, "x-daylimit-remaining"), "4998");
    assert!(!header(&r, "x-appminlimit-remaining").is_empty());
    for _ in 0..58 {
        send(xero(&http, &sb, &token, &tenant, "/Items")).await;
    }
    let r = send(xero(&http, &sb, &token, &tenant, "/Items")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "x-rate-limit-problem"), "minute");
    assert_eq!(header(&r, "x-minlimit-remaining"), "0");
    let wait: u64 = header(&r, "retry-after").parse().expect("retry-after");
    assert!((1..=60).contains(&wait), "{wait}");
    tokio::time::advance(Duration::from_secs(wait)).await;
    let r = send(xero(&http, &sb, &token, &tenant, "/Items")).await;
    assert_eq!(r.status, StatusCode::OK);
    // An injected 429 looks the same.
    sb.update_faults(|f| {
        f.rate_limit_burst = 1;
        f.retry_after = RetryAfter::Seconds(5);
        f.error_burst = 0;
    });
    let r = send(xero(&http, &sb, &token, &tenant, "/Items")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after"), "5");
    assert_eq!(header(&r, "x-rate-limit-problem"), "minute");
}

#[tokio::test]
async fn i15_xero_faults_hit_the_catalogs_fields() {
    let sb = start(Persona::Xero).await;
    let http = reqwest::Client::new();
    let (token, _) = xero_token(&http, &sb).await;
    let tenant = xero_tenant(&http, &sb, &token).await;
    sb.set_faults(Faults {
        error_burst: 1,
        error_status: 500,
        bad_records: vec![
            BadRecord {
                entity: Entity::Invoices,
                id: "in_00000001".into(),
                kind: BadKind::DanglingReference,
            },
            BadRecord {
                entity: Entity::Invoices,
                id: "in_00000002".into(),
                kind: BadKind::InvalidDate,
            },
        ],
        schema_drift: vec![SchemaDrift {
            entity: Entity::Customers,
            rename: None,
            retype: Some("Name".into()),
        }],
        ..Faults::default()
    });
    let r = send(xero(&http, &sb, &token, &tenant, "/Invoices").query(&[("page", "1")])).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["Status"], 500);
    let r = send(xero(&http, &sb, &token, &tenant, "/Invoices").query(&[("page", "1")])).await;
    let invoices = &r.body["Invoices"];
    assert_eq!(
        invoices[0]["Contact"]["ContactID"],
        sb.served_id(Entity::Customers, 99_999_999).as_str()
    );
    assert_eq!(invoices[1]["Date"], "31/02/2026");
    let r = send(xero(&http, &sb, &token, &tenant, "/Contacts").query(&[("page", "1")])).await;
    assert!(r.body["Contacts"][0]["Name"].is_u64());
}

// ---------------------------------------------------------------- HubSpot

fn hubspot(http: &reqwest::Client, sb: &Sandbox, path: &str) -> reqwest::RequestBuilder {
    http.get(format!("{}/crm/v3/objects{path}", sb.base_url()))
        .bearer_auth(HUBSPOT_TOKEN)
}

fn search(
    http: &reqwest::Client,
    sb: &Sandbox,
    object: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    http.post(format!("{}/crm/v3/objects/{object}/search", sb.base_url()))
        .bearer_auth(HUBSPOT_TOKEN)
        .json(body)
}

#[tokio::test]
async fn i15_hubspot_pages_by_after_and_selects_properties() {
    let sb = start(Persona::Hubspot).await;
    let http = reqwest::Client::new();
    for (object, count) in [("contacts", 250), ("companies", 50), ("deals", 220)] {
        let mut seen = 0;
        let mut after: Option<String> = None;
        loop {
            let mut req = hubspot(&http, &sb, &format!("/{object}"))
                .query(&[("limit", "100"), ("archived", "false")]);
            if let Some(a) = &after {
                req = req.query(&[("after", a)]);
            }
            let r = send(req).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let results = r.body["results"].as_array().expect("results");
            for o in results {
                assert!(o["id"].is_string() && o["createdAt"].is_string());
                assert!(o["updatedAt"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with(".000Z"));
                assert!(o["properties"]["hs_object_id"].is_string());
            }
            seen += results.len();
            match r.body["paging"]["next"]["after"].as_str() {
                Some(a) => after = Some(a.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, count, "{object}");
    }
    let r = send(hubspot(&http, &sb, "/contacts").query(&[("properties", "email,phone")])).await;
    let props = r.body["results"][0]["properties"]
        .as_object()
        .expect("properties");
    assert!(props.contains_key("email") && props.contains_key("phone"));
    assert!(!props.contains_key("firstname"), "only what was asked for");
    let r = send(hubspot(&http, &sb, "/deals/3").query(&[("properties", "dealname,amount")])).await;
    assert_eq!(r.body["properties"]["dealname"], "INV-00000003");
    assert!(r.body["properties"]["amount"].is_string());
    let r = send(hubspot(&http, &sb, "/contacts/100000")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["category"], "OBJECT_NOT_FOUND");
    assert!(r.body["correlationId"].is_string());
}

#[tokio::test]
async fn i15_hubspot_search_returns_only_changed_records() {
    let sb = start(Persona::Hubspot).await;
    let http = reqwest::Client::new();
    let since_ms = (AFTER_BASE * 1000).to_string();
    let body = |property: &str, after: Option<&str>| {
        let mut b = json!({
            "filterGroups": [{"filters": [{"propertyName": property, "operator": "GTE", "value": since_ms}]}],
            "sorts": [property],
            "properties": ["email", "name", "dealname"],
            "limit": 3,
        });
        if let Some(a) = after {
            b["after"] = a.into();
        }
        b
    };
    let r = send(search(
        &http,
        &sb,
        "contacts",
        &body("lastmodifieddate", None),
    ))
    .await;
    assert_eq!(r.body["total"], 0);
    let touched = sb.touch_fraction(Entity::Customers, 0.03);
    sb.patch_record(Entity::Invoices, "in_00000011", json!({"status": "paid"}));
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let r = send(search(
            &http,
            &sb,
            "contacts",
            &body("lastmodifieddate", after.as_deref()),
        ))
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["total"], touched.len());
        for o in r.body["results"].as_array().expect("results") {
            ids.push(
                o["id"]
                    .as_str()
                    .expect("id")
                    .parse::<usize>()
                    .expect("number"),
            );
        }
        match r.body["paging"]["next"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    let expected: Vec<usize> = touched
        .iter()
        .filter_map(|id| Entity::Customers.parse_id(id))
        .collect();
    assert_eq!(ids, expected, "sorted by change time, which is touch order");
    // Companies change with their customers.
    let r = send(search(
        &http,
        &sb,
        "companies",
        &body("hs_lastmodifieddate", None),
    ))
    .await;
    let companies = r.body["total"].as_u64().expect("total");
    assert!(companies >= 1 && companies <= touched.len() as u64);
    let r = send(search(
        &http,
        &sb,
        "deals",
        &body("hs_lastmodifieddate", None),
    ))
    .await;
    assert_eq!(r.body["total"], 1);
    let deal = &r.body["results"][0]["properties"];
    assert_eq!(deal["dealname"], "INV-00000011");
    assert!(
        deal.get("dealstage").is_none(),
        "only the asked-for properties: {deal}"
    );
    // RFC 3339 values work too; unknown operators are refused.
    let iso = json!({"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": "2026-01-01T00:04:10Z"}]}]});
    let r = send(search(&http, &sb, "contacts", &iso)).await;
    assert_eq!(r.body["total"], touched.len());
    let bad = json!({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}]});
    let r = send(search(&http, &sb, "contacts", &bad)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["category"], "VALIDATION_ERROR");
}

#[tokio::test]
async fn i15_hubspot_accepts_private_app_tokens_and_oauth() {
    let sb = start(Persona::Hubspot).await;
    let http = reqwest::Client::new();
    let url = format!("{}/crm/v3/objects/contacts", sb.base_url());
    let r = send(http.get(&url).bearer_auth("pat-na1-wrong")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["category"], "INVALID_AUTHENTICATION");
    let (access, refresh) = sign_in(&http, &sb, "/oauth/authorize", "/oauth/v1/token").await;
    let r = send(http.get(&url).bearer_auth(&access)).await;
    assert_eq!(r.status, StatusCode::OK);
    sb.expire_tokens();
    let r = send(http.get(&url).bearer_auth(&access)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["category"], "EXPIRED_AUTHENTICATION");
    let token_url = format!("{}/oauth/v1/token", sb.base_url());
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", "sandbox-client"),
        ("client_secret", "sandbox-secret"),
    ];
    let r = send(http.post(&token_url).form(&form)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(http.post(&token_url).form(&form)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(r.body["status"], "BAD_REFRESH_TOKEN");
    assert!(r.body["correlationId"].is_string() && r.body["category"].is_string());
    // The private-app token stops working when the admin revokes it.
    sb.set_credentials_revoked(true);
    let r = send(http.get(&url).bearer_auth(HUBSPOT_TOKEN)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn i15_hubspot_rate_limit_headers_faults_and_exchange_log() {
    let sb = start(Persona::Hubspot).await;
    let http = reqwest::Client::new();
    let r = send(hubspot(&http, &sb, "/deals")).await;
    assert_eq!(header(&r, "x-hubspot-ratelimit-max"), "100");
    assert_eq!(header(&r, "x-hubspot-ratelimit-remaining"), "99");
    assert_eq!(
        header(&r, "x-hubspot-ratelimit-interval-milliseconds"),
        "10000"
    );
    for _ in 0..99 {
        send(hubspot(&http, &sb, "/deals")).await;
    }
    let r = send(hubspot(&http, &sb, "/deals")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["errorType"], "RATE_LIMIT");
    assert_eq!(r.body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(header(&r, "x-hubspot-ratelimit-remaining"), "0");
    tokio::time::advance(Duration::from_secs(10)).await;

    sb.set_faults(Faults {
        error_burst: 1,
        bad_records: vec![BadRecord {
            entity: Entity::Customers,
            id: "cus_00000001".into(),
            kind: BadKind::WrongType,
        }],
        schema_drift: vec![SchemaDrift {
            entity: Entity::Customers,
            rename: Some(("email".into(), "e_mail".into())),
            retype: None,
        }],
        ..Faults::default()
    });
    let r = send(hubspot(&http, &sb, "/contacts?properties=email,phone")).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.body["status"], "error");
    assert!(r.body["category"].is_string());
    let r = send(hubspot(&http, &sb, "/contacts?properties=email,phone")).await;
    let first = &r.body["results"][0]["properties"];
    assert!(first["phone"].is_u64(), "{first}");
    assert!(
        first.get("email").is_none() && first["e_mail"].is_string(),
        "{first}"
    );

    let log = sb.exchanges();
    let last = log.last().expect("logged");
    assert_eq!(last.path, "/crm/v3/objects/contacts");
    assert_eq!(last.query, "properties=email,phone");
    assert_eq!(last.headers["authorization"], "Bearer redacted");
    assert_eq!(last.response_headers["x-hubspot-ratelimit-max"], "100");
}

#[tokio::test]
async fn i15_a_persona_window_can_be_made_small_and_elapsed_by_a_test_clock() {
    let sb = Sandbox::start(SandboxConfig {
        persona: Some(Persona::Hubspot),
        customers: 5,
        rate_limit: Some(2),
        ..Default::default()
    })
    .await
    .expect("start");
    let http = reqwest::Client::new();
    for remaining in ["1", "0"] {
        let r = send(hubspot(&http, &sb, "/contacts")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(header(&r, "x-hubspot-ratelimit-max"), "2");
        assert_eq!(header(&r, "x-hubspot-ratelimit-remaining"), remaining);
    }
    let r = send(hubspot(&http, &sb, "/contacts")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // A test whose engine waits on its own clock says the time passed.
    sb.elapse_handle().elapse(Duration::from_secs(10));
    let r = send(hubspot(&http, &sb, "/contacts")).await;
    assert_eq!(r.status, StatusCode::OK);
}
