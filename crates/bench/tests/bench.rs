//! The bench's plumbing at a size that runs in seconds: every phase reports, the engine pulls
//! every record, the fault profile's faults happened, and the list benchmark walks every list.
//! The figures themselves are the bench's business (docs/performance.md), not a test's.

use std::process::Command;

use serde_json::Value;

const N: u64 = 500;

fn phase<'a>(pulls: &'a [Value], name: &str) -> &'a Value {
    pulls
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no '{name}' phase in {pulls:#?}"))
}

fn ratio(p: &Value, name: &str) -> Option<f64> {
    p["ratios"]
        .as_array()?
        .iter()
        .find(|r| r[0] == name)
        .and_then(|r| r[1].as_f64())
}

#[test]
fn the_bench_reports_every_phase_with_its_ceilings_and_overheads() {
    let out = Command::new(env!("CARGO_BIN_EXE_syncdesk-bench"))
        .args([
            "--sizes",
            &N.to_string(),
            "--pages",
            "100",
            "--list-rows",
            "120",
        ])
        .args(["--repeat", "2", "--token-records", "3000", "--json"])
        .output()
        .expect("the bench starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the bench failed: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let pulls = report["pulls"].as_array().expect("pulls");
    assert_eq!(pulls.len(), 5, "{pulls:#?}");

    for name in ["provider ceiling", "store ceiling", "engine full"] {
        let p = phase(pulls, name);
        assert_eq!(p["records"], N, "{name}: {p}");
        assert!(p["records_per_sec"].as_f64() > Some(0.0), "{name}: {p}");
        assert!(p["peak_rss_mb"].as_f64() > Some(1.0), "{name}: {p}");
    }
    let full = phase(pulls, "engine full");
    assert!(
        full["note"]
            .as_str()
            .unwrap()
            .contains(&format!("created {N} ")),
        "{full}"
    );
    assert!(full["cpu_ms"].as_f64() > Some(0.0), "{full}");
    assert!(ratio(full, "of provider ceiling").is_some(), "{full}");
    assert!(ratio(full, "of store ceiling").is_some(), "{full}");

    // 1% of the records were touched at the provider: the incremental run reads those, not all.
    let incr = phase(pulls, "engine incremental 1%");
    let read = incr["records"].as_u64().unwrap();
    assert!((1..N / 10).contains(&read), "{incr}");
    assert!(ratio(incr, "time of full").is_some(), "{incr}");

    // The fault profile failed some records, retried some requests and waited out some 429s,
    // and still read every record.
    let faults = phase(pulls, "engine faults");
    assert_eq!(faults["records"], N, "{faults}");
    let note = faults["note"].as_str().unwrap();
    let count = |after: &str| -> u64 {
        let rest = &note[note
            .find(after)
            .unwrap_or_else(|| panic!("{after} in {note}"))
            + after.len()..];
        rest.split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(';')
            .parse()
            .unwrap()
    };
    assert!(count("failed ") > 0, "{note}");
    assert!(
        note.contains("request retries") && note.contains("rate-limit waits"),
        "{note}"
    );
    // What the engine was told to wait is measured, not assumed: none in the clean pull; the
    // fault profile's backoff and Retry-After are configured to 0 s.
    assert_eq!(full["waited_ms"].as_f64(), Some(0.0), "{full}");
    assert_eq!(faults["waited_ms"].as_f64(), Some(0.0), "{faults}");
    assert!(note.ends_with(" ms waited"), "{note}");
    assert!(ratio(faults, "overhead over clean").is_some(), "{faults}");
    assert!(
        ratio(faults, "CPU overhead over clean").is_some(),
        "{faults}"
    );

    // 2-second tokens, 30 ms a request: a token request per token lifetime, not per page.
    let t = &report["tokens"];
    assert_eq!(t["records"], 3000, "{t}");
    assert_eq!(t["token_lifetime_s"], 2, "{t}");
    let requests = t["token_requests"].as_u64().unwrap();
    let run_s = t["elapsed_ms"].as_f64().unwrap() / 1e3;
    // One per (2 s − the 10 % refresh margin) of run time, plus the first.
    let bound = (run_s / 1.8).ceil() as u64 + 1;
    assert!(
        (1..=bound).contains(&requests),
        "{requests} token requests in {run_s:.1} s (at most {bound}; 30 pages): {t}"
    );
    assert_eq!(t["token_requests_bound"], bound, "{t}");
    assert!(
        (t["run_time_per_lifetime"].as_f64().unwrap() - run_s / 2.0).abs() < 1e-6,
        "{t}"
    );

    // Four lists, each with its first page and its deep pages.
    let lists = report["lists"].as_array().expect("lists");
    assert_eq!(lists.len(), 8, "{lists:#?}");
    for l in lists {
        assert_eq!(l["rows"], 120, "{l}");
        assert!(l["samples"].as_u64() > Some(0), "{l}");
        assert!(l["p99_ms"].as_f64() >= l["p50_ms"].as_f64(), "{l}");
    }
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    for (args, says) in [
        (&["--pages", "0"][..], "--pages: 0 is not within 1..=1000"),
        (&["--sizes", "0"][..], "--sizes: sizes must be positive"),
        (&["--repeat", "0"][..], "--repeat"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_syncdesk-bench"))
            .args(args)
            .output()
            .expect("the bench starts");
        assert!(!out.status.success(), "{args:?} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
