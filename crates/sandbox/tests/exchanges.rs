//! The exchange log (issue 15, point 3/4): what a client sent and what the sandbox answered,
//! credentials redacted, in memory and as JSON lines in a file.

use serde_json::Value;
use syncdesk_sandbox::{Exchange, Sandbox, SandboxConfig};

#[tokio::test]
async fn i15_exchange_log_records_redacted_requests_and_responses() {
    let dir = std::env::temp_dir().join(format!("syncdesk-exchanges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("log.jsonl");
    let sb = Sandbox::start(SandboxConfig {
        customers: 3,
        record: Some(file.clone()),
        ..Default::default()
    })
    .await
    .expect("start");
    let http = reqwest::Client::new();
    let grant: Value = http
        .post(format!("{}/oauth/token", sb.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
        ])
        .send()
        .await
        .expect("grant")
        .json()
        .await
        .expect("json");
    let token = grant["access_token"].as_str().expect("token");
    let resp = http
        .get(format!("{}/v1/customers?limit=2", sb.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("list");
    assert_eq!(resp.status(), 200);
    // Admin requests are not logged.
    http.get(format!("{}/_admin/stats", sb.base_url()))
        .send()
        .await
        .expect("stats");

    let log = sb.exchanges();
    assert_eq!(log.len(), 2, "{log:?}");
    let token_ex = &log[0];
    assert_eq!(token_ex.method, "POST");
    assert_eq!(token_ex.path, "/oauth/token");
    assert_eq!(token_ex.body["client_secret"], "redacted");
    assert_eq!(token_ex.body["client_id"], "sandbox-client");
    assert_eq!(token_ex.response_body["access_token"], "redacted");
    assert_eq!(token_ex.response_body["refresh_token"], "redacted");
    let list = &log[1];
    assert_eq!(list.path, "/v1/customers");
    assert_eq!(list.query, "limit=2");
    assert_eq!(list.headers["authorization"], "Bearer redacted");
    assert_eq!(list.body, Value::Null);
    assert_eq!(list.status, 200);
    assert_eq!(list.response_headers["content-type"], "application/json");
    assert_eq!(list.response_body["data"].as_array().map(Vec::len), Some(2));
    let text = serde_json::to_string(&log).expect("serialize");
    assert!(!text.contains(token), "a token leaked into the log");

    let lines: Vec<Exchange> = std::fs::read_to_string(&file)
        .expect("read log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, log);

    sb.reset_stats();
    assert!(sb.exchanges().is_empty());
    sb.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn i15_exchange_log_is_off_by_default() {
    let sb = Sandbox::start(SandboxConfig {
        customers: 3,
        ..Default::default()
    })
    .await
    .expect("start");
    reqwest::get(format!("{}/v1/customers", sb.base_url()))
        .await
        .expect("request");
    assert!(sb.exchanges().is_empty());
}
