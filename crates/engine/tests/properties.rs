//! Property tests of every parser that reads input from outside (issue 13, point 11): connector
//! specs, provider pages, mapping transforms, durations and schedules, rate-limit headers.
//! None may panic on any input, and each fails the documented way.
//!
//! `cargo test` runs a modest number of cases per property; `scripts/fuzz.sh [SECONDS]` runs
//! each one for a set time with many more (`PROPTEST_CASES`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;
use syncdesk_engine::connector::{record_id, take_records};
use syncdesk_engine::mapping::MappingPlan;
use syncdesk_engine::model::{parse_duration, Schedule, MAX_DURATION_DAYS};
use syncdesk_engine::policy::{pace_from_headers, parse_retry_after};
use syncdesk_engine::record::{read_json, Fields, Record};
use syncdesk_engine::{ConnectorSpec, Error, FieldMapping};

/// Cases per property: `PROPTEST_CASES` when set (the fuzz script), else `default`.
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Failures print their minimal input; nothing is written next to the sources.
        failure_persistence: None,
        ..Config::default()
    }
}

fn is_invalid(e: &Error) -> bool {
    matches!(e, Error::Invalid { .. })
}

/// Any time chrono can represent, weighted towards the present and the calendar's edges.
fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    prop_oneof![
        3 => 0i64..4_102_444_800,
        1 => min..=max,
        1 => prop_oneof![Just(min), Just(max), (max - 86_400 * 400)..=max],
    ]
    .prop_map(|s| DateTime::from_timestamp(s, 0).expect("in range"))
}

/// JSON values up to a few levels deep, with the awkward leaves: big and negative numbers,
/// floats, unicode and empty strings.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        "[0-9]{1,30}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?".prop_map(Value::String),
        "[a-z.]{0,8}@[a-z.]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A provider page: an object with records at `data` (objects with ids of every kind) and
/// paging fields, or anything else JSON can be.
fn any_page() -> impl Strategy<Value = Value> {
    let record = (any_json(), any_json(), any_json()).prop_map(
        |(id, name, rest)| serde_json::json!({"id": id, "name": name, "nested": {"x": rest}}),
    );
    prop_oneof![
        (prop::collection::vec(record, 0..8), any_json(), any_json()).prop_map(
            |(records, has_more, next)| {
                serde_json::json!({"data": records, "has_more": has_more, "next_cursor": next})
            }
        ),
        any_json(),
    ]
}

const SPEC: &str = syncdesk_sandbox::CONNECTOR_SPEC;

/// One edit to a text: cut a range, insert text, or duplicate a line.
#[derive(Debug, Clone)]
enum Edit {
    Cut(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    ReplaceLine(usize, String),
}

fn any_edit() -> impl Strategy<Value = Edit> {
    let piece = prop_oneof![
        ".{0,12}",
        Just("\"".to_string()),
        Just("[entities.x]\npath = \"/x\"\n".to_string()),
        Just("style = \"link\"".to_string()),
        Just("= ".to_string()),
        Just("{".to_string()),
        Just("id = \"\"".to_string()),
        Just("path = \"/http://other.host/x\"".to_string()),
        Just("transform = \"reference:nope\"".to_string()),
        Just("unknown_key = 1".to_string()),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Cut(a, n)),
        (any::<usize>(), piece.clone()).prop_map(|(a, s)| Edit::Insert(a, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), piece).prop_map(|(a, s)| Edit::ReplaceLine(a, s)),
    ]
}

fn apply_edit(text: &str, edit: &Edit) -> String {
    let boundary = |at: usize| {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let mut lines: Vec<&str> = text.lines().collect();
    match edit {
        Edit::Cut(at, n) => {
            let a = boundary(*at);
            let b = boundary(a.saturating_add(*n).min(text.len()));
            format!("{}{}", &text[..a], &text[b.max(a)..])
        }
        Edit::Insert(at, s) => {
            let a = boundary(*at);
            format!("{}{s}{}", &text[..a], &text[a..])
        }
        Edit::DuplicateLine(at) if !lines.is_empty() => {
            let i = at % lines.len();
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
        Edit::ReplaceLine(at, s) if !lines.is_empty() => {
            let i = at % lines.len();
            lines[i] = s;
            lines.join("\n")
        }
        _ => text.to_string(),
    }
}

/// Every transform the docs list, and some near misses.
fn any_transform() -> impl Strategy<Value = String> {
    let step = prop_oneof![
        Just("trim".to_string()),
        Just("lowercase".to_string()),
        Just("uppercase".to_string()),
        Just("string".to_string()),
        Just("number".to_string()),
        Just("integer".to_string()),
        Just("boolean".to_string()),
        Just("date".to_string()),
        Just("date:%d/%m/%Y".to_string()),
        Just("date:%Q".to_string()),
        Just("datetime".to_string()),
        Just("cents_to_decimal".to_string()),
        Just("email".to_string()),
        Just("enum:paid=settled,open=due".to_string()),
        Just("reference:customers".to_string()),
        "[a-z_]{0,10}(:.{0,10})?",
    ];
    prop::collection::vec(step, 1..4).prop_map(|s| s.join("|"))
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text: parsed or refused as invalid, never a panic.
    #[test]
    fn spec_parser_never_panics_on_any_text(text in ".{0,400}") {
        if let Err(e) = ConnectorSpec::parse(&text) {
            prop_assert!(is_invalid(&e), "{e:?}");
        }
        let json = format!("{{{text}");
        if let Err(e) = ConnectorSpec::parse(&json) {
            prop_assert!(is_invalid(&e), "{e:?}");
        }
    }

    /// The sandbox's valid spec with a few random edits.
    #[test]
    fn spec_parser_never_panics_on_mutated_specs(edits in prop::collection::vec(any_edit(), 1..4)) {
        let mut text = SPEC.to_string();
        for e in &edits {
            text = apply_edit(&text, e);
        }
        if let Err(e) = ConnectorSpec::parse(&text) {
            prop_assert!(is_invalid(&e), "{e:?}");
        }
    }

    /// Any bytes as a page body: read or refused, and whatever is read yields records and
    /// ids or a malformed-response error.
    #[test]
    fn page_parser_never_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..300)) {
        check_page(&body)?;
    }

    /// Generated JSON pages (and their text cut short).
    #[test]
    fn page_parser_never_panics_on_generated_json(page in any_page(), cut in any::<usize>()) {
        let text = serde_json::to_vec(&page).unwrap();
        check_page(&text)?;
        check_page(&text[..cut % (text.len() + 1)])?;
    }

    /// Any value through every transform chain: mapped or a record failure, never a panic.
    #[test]
    fn mapping_transforms_never_panic(
        value in any_json(),
        transform in any_transform(),
        default in proptest::option::of(any_json()),
        required in any::<bool>(),
    ) {
        let m = FieldMapping {
            source: "v".into(),
            target: "out".into(),
            transform: Some(transform),
            default,
            required,
            expect: None,
            optional: true,
        };
        match MappingPlan::new(std::slice::from_ref(&m)) {
            Err(e) => prop_assert!(is_invalid(&e), "{e:?}"),
            Ok(plan) => {
                let record = Record::from_value(&serde_json::json!({"v": value}));
                let _ = plan.apply(&record.fields());
                let nested = Record::from_value(&serde_json::json!({"v": {"v": value}}));
                let _ = plan.apply(&nested.fields());
            }
        }
    }

    /// Durations: parsed within range or refused with a message, never a panic.
    #[test]
    fn duration_parser_never_panics(
        text in prop_oneof![".{0,30}", "[0-9]{0,25}[smhdx ]{0,2}"],
    ) {
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d <= Duration::from_secs(MAX_DURATION_DAYS * 86_400));
        }
    }

    /// Schedules: any text after `every ` / `cron `, and the next run of what parses from
    /// any time.
    #[test]
    fn schedule_parser_and_next_run_never_panic(
        text in prop_oneof![
            ".{0,30}",
            "every [0-9]{0,22}[smhd]?",
            "cron ([0-9*/,LW#?-]{1,6} ){4,6}",
            "cron [0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,-]{1,4} [0-9*/,-]{1,4}",
        ],
        after in any_time(),
    ) {
        match Schedule::parse(&text) {
            Ok(s) => {
                if let Some(next) = s.next_after(after) {
                    prop_assert!(next > after);
                }
            }
            Err(e) => prop_assert!(is_invalid(&e), "{e:?}"),
        }
    }

    /// A schedule as stored may hold any interval: no next time beyond the calendar, no panic.
    #[test]
    fn stored_schedules_never_panic(seconds in any::<u64>(), after in any_time()) {
        if let Some(next) = (Schedule::Interval { seconds }).next_after(after) {
            prop_assert_eq!((next - after).num_seconds() as u64, seconds);
        }
    }

    /// Retry-After: seconds or an HTTP date, anything else ignored; never a panic, and
    /// never more than the header asked for.
    #[test]
    fn retry_after_never_panics(
        value in prop_oneof![
            ".{0,40}",
            "[0-9]{1,25}",
            "(Mon|Tue|Sun), [0-9]{2} (Jan|Feb|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        ],
        now in any_time(),
    ) {
        if let Some(d) = parse_retry_after(&value, now) {
            if let Ok(secs) = value.trim().parse::<u64>() {
                prop_assert!(d <= Duration::from_secs(secs));
            }
        }
    }

    /// Rate-limit headers: never a panic, and never a pause beyond an hour.
    #[test]
    fn pace_from_headers_never_panics_and_stays_bounded(
        remaining in proptest::option::of(prop_oneof![".{0,12}", "-?[0-9]{1,22}"]),
        reset in proptest::option::of(prop_oneof![".{0,12}", "-?[0-9]{1,22}"]),
        now in 0i64..4_102_444_800,
    ) {
        let now = DateTime::from_timestamp(now, 0).unwrap();
        if let Some(d) = pace_from_headers(remaining.as_deref(), reset.as_deref(), now) {
            prop_assert!(d <= Duration::from_secs(3600), "{d:?}");
        }
    }
}

/// Inputs the properties above found panicking, kept as plain cases.
#[test]
fn found_by_properties_spec_error_inside_a_character_and_cron_at_the_calendar_edges() {
    // toml reported a span starting inside `¡`; the line number sliced the text there.
    let e = ConnectorSpec::parse("\"\\¡").unwrap_err();
    assert!(is_invalid(&e), "{e:?}");
    // croner's day steps overflowed NaiveDate at the calendar's edges.
    let s = Schedule::parse("cron 0 0 , * 0").unwrap();
    assert_eq!(s.next_after(DateTime::<Utc>::MIN_UTC), None);
    assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC), None);
}

/// A body through the page reading the runner does: the JSON check, the records at `data`
/// (and at the top level), each record's id.
fn check_page(body: &[u8]) -> Result<(), TestCaseError> {
    let Ok(raw) = read_json(body) else {
        return Ok(());
    };
    let page = Fields::of(&raw);
    for path in ["data", "", "data.x"] {
        match take_records(&page, path, "/v1/customers") {
            Ok(records) => {
                for r in &records {
                    match record_id(&r.fields(), "id", "/v1/customers") {
                        Ok(id) => prop_assert!(!id.is_empty()),
                        Err(e) => {
                            prop_assert!(matches!(e, Error::MalformedResponse { .. }), "{e:?}")
                        }
                    }
                }
            }
            Err(e) => prop_assert!(matches!(e, Error::MalformedResponse { .. }), "{e:?}"),
        }
    }
    Ok(())
}
