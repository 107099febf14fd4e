//! Recognises the common error patterns of an execution and explains them with the
//! resolution and the action that fixes them (R-I3), plus prevention hints (R-I5).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::{
    Execution, ExecutionStatus, FailureKind, Job, Mode, ObservedFields, RecordErrorKind,
};

/// What the admin can do about it; the UI shows a button per action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reauthenticate,
    EditMappings,
    OpenFailedRecords,
    EditJobSettings,
    /// Nothing to do: the automatic retry handles it.
    WaitForRetry,
    RetryNow,
}

/// One recognised pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnosis {
    /// Stable id of the pattern (`auth`, `rate_limit`, `validation`, `data_quality`,
    /// `provider_instability`, `schema_change`, …).
    pub pattern: &'static str,
    pub title: String,
    pub likely_cause: String,
    pub resolution: String,
    pub actions: Vec<Action>,
    /// The records a record-level pattern is based on; run-level patterns have none.
    pub basis: Option<Basis>,
}

/// `records` of the run's `processed` records show the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Basis {
    pub records: u64,
    pub processed: u64,
}

impl Basis {
    /// "10 of 2,000 records (0.5 %)".
    pub fn describe(self) -> String {
        let pct = if self.processed == 0 {
            0.0
        } else {
            self.records as f64 * 100.0 / self.processed as f64
        };
        let pct = if pct >= 10.0 || pct == 0.0 {
            format!("{pct:.0} %")
        } else {
            format!("{pct:.1} %")
        };
        format!(
            "{} of {} records ({pct})",
            thousands(self.records),
            thousands(self.processed)
        )
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn d(
    pattern: &'static str,
    title: &str,
    cause: &str,
    resolution: &str,
    actions: &[Action],
) -> Diagnosis {
    Diagnosis {
        pattern,
        title: title.into(),
        likely_cause: cause.into(),
        resolution: resolution.into(),
        actions: actions.to_vec(),
        basis: None,
    }
}

/// What a run's records say beyond its counts.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// Error-log rows by kind.
    pub errors: &'a BTreeMap<RecordErrorKind, u64>,
    /// The fields the run's schema and validation errors name.
    pub fields: &'a [String],
    /// Whether the provider's field set for the entity changed during this run.
    pub fields_changed: bool,
}

/// Explain an execution from its status, failure kind, request statistics and error log.
/// Record-level patterns say which share of the processed records they rest on, and "the
/// provider changed its format" needs the field set to have changed or most records to
/// mismatch; a handful of mismatching records is a data-quality problem of those records.
pub fn diagnose(exec: &Execution, job: &Job, evidence: &Evidence<'_>) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    let processed = exec.counts.processed;
    let count = |k: RecordErrorKind| evidence.errors.get(&k).copied().unwrap_or(0);
    let named = if evidence.fields.is_empty() {
        String::new()
    } else {
        format!(" (fields: {})", evidence.fields.join(", "))
    };
    match exec.failure_kind {
        Some(FailureKind::Auth) => out.push(d(
            "auth",
            "The provider no longer accepts this connection's sign-in",
            "Its credentials expired or were revoked: the provider refused them (HTTP 401), even with a fresh token.",
            "Re-authenticate the connection, then run the job again.",
            &[Action::Reauthenticate],
        )),
        Some(FailureKind::RateLimited) => out.push(d(
            "rate_limit",
            "The provider kept asking Syncdesk to slow down",
            "Rate limited (HTTP 429) for longer than the run may wait.",
            "Reduce the sync frequency or the batch size.",
            &[Action::EditJobSettings],
        )),
        Some(FailureKind::ProviderUnavailable) => out.push(d(
            "provider_instability",
            "The provider was down or did not answer",
            "Server errors (HTTP 5xx) or no answer at all, on every try of a request (again after 1 s, 5 s and 15 s).",
            if job.settings.retry_on_failure {
                "Wait: Syncdesk runs the job again automatically, while the app or `syncdesk worker` is running."
            } else {
                "Run the job again later, or turn on automatic retries."
            },
            &[Action::WaitForRetry, Action::RetryNow],
        )),
        Some(FailureKind::TimedOut) => out.push(d(
            "timeout",
            "The execution ran out of time",
            "The run needed longer than its timeout (slow provider, long rate-limit pauses or a large full sync).",
            if job.mode == Mode::Full {
                "Use incremental mode, or give the job a longer timeout."
            } else {
                "Give the job a longer timeout; records done so far are kept."
            },
            &[Action::EditJobSettings],
        )),
        Some(FailureKind::Rejected) | Some(FailureKind::Malformed) => out.push(d(
            "provider_rejected",
            "The provider rejected the request or answered something unexpected",
            "The API changed, an endpoint moved, or the connection points at the wrong place.",
            "Check the connection's base URL and the connector spec; see the note for the exact answer.",
            &[Action::EditJobSettings],
        )),
        Some(FailureKind::Interrupted) => out.push(d(
            "interrupted",
            "The app stopped while this run was in progress",
            "The process running it was closed or crashed.",
            "Nothing was lost; the automatic retry continues where records were committed.",
            &[Action::WaitForRetry, Action::RetryNow],
        )),
        _ => {}
    }
    if exec.failure_kind.is_none() && exec.request_retries > 0 {
        out.push(d(
            "provider_instability",
            "The provider had brief errors",
            "Some requests failed (HTTP 5xx or no answer) and worked when tried again.",
            "Nothing to do: Syncdesk tried those requests again by itself.",
            &[Action::WaitForRetry],
        ));
    }
    if exec.failure_kind.is_none() && exec.rate_limit_waits > 0 {
        out.push(d(
            "rate_limit",
            "The provider asked Syncdesk to slow down",
            "Rate limited (HTTP 429): the run paused as long as the provider asked.",
            "If runs get slow, reduce the sync frequency or the batch size.",
            &[Action::EditJobSettings],
        ));
    }
    let schema = count(RecordErrorKind::SchemaMismatch);
    let basis = |records: u64| Basis { records, processed };
    if schema > 0 && (evidence.fields_changed || schema * 2 > processed) {
        let all = schema == processed;
        let mut x = d(
            "schema_change",
            if all {
                "All records fail with a schema error"
            } else {
                "Most records no longer match the mappings"
            },
            "",
            "Update the field mappings to match the new schema.",
            &[Action::EditMappings],
        );
        x.likely_cause = format!(
            "The provider changed its data: {} no longer have the fields or types the mappings expect{named}{}.",
            basis(schema).describe(),
            if evidence.fields_changed {
                ", and the fields it sends changed during this run"
            } else {
                ""
            }
        );
        x.basis = Some(basis(schema));
        out.push(x);
    } else if schema > 0 {
        let mut x = d(
            "data_quality",
            "Some records lack fields or have unexpected types",
            "",
            "Fix those records at the source, or give the mapping a default value or mark the field optional.",
            &[Action::OpenFailedRecords, Action::EditMappings],
        );
        x.likely_cause = format!(
            "Data quality: {} lack a field or carry a different type{named}; the rest match the mappings, so the provider's format has not changed.",
            basis(schema).describe()
        );
        x.basis = Some(basis(schema));
        out.push(x);
    }
    let data = count(RecordErrorKind::ValidationError)
        + count(RecordErrorKind::TransformError)
        + count(RecordErrorKind::ReferenceNotFound);
    if data > 0 {
        let mut x = d(
            "validation",
            "Specific records fail with validation errors",
            "",
            "Fix the source data, or update the field mappings (a default value prevents null errors).",
            &[Action::OpenFailedRecords, Action::EditMappings],
        );
        x.likely_cause = format!(
            "Data quality issues in {}: missing required values, values that cannot be converted, or references to records that do not exist.",
            basis(data).describe()
        );
        x.basis = Some(basis(data));
        out.push(x);
    }
    if exec.failure_kind == Some(FailureKind::CircuitBreaker) && out.is_empty() {
        out.push(d(
            "breaker",
            "Stopped early: most records were failing",
            "Something is fundamentally wrong with these records or their mappings.",
            "Open the error log, fix the cause, then run the job again.",
            &[Action::OpenFailedRecords, Action::EditMappings],
        ));
    }
    if exec.status == ExecutionStatus::CompletedWithErrors && out.is_empty() {
        out.push(d(
            "validation",
            "Some records failed",
            "Data quality issues in specific records.",
            "Open the failed records to fix or dismiss them.",
            &[Action::OpenFailedRecords],
        ));
    }
    out
}

/// What changed in the provider's schema, shown beside a `schema_change` diagnosis (R-E5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaChange {
    pub entity: String,
    /// Fields the job's mappings read (and do not mark optional) that the provider no longer
    /// sends: the ones to remap.
    pub missing: Vec<String>,
    /// Sent now, not before the last change.
    pub added: Vec<String>,
    /// Sent before the last change, not now.
    pub removed: Vec<String>,
    /// When the current field set was first seen; `None` if it never changed (then `added` and
    /// `removed` are empty and only `missing` speaks).
    pub changed_at: Option<DateTime<Utc>>,
    pub observed_at: DateTime<Utc>,
}

/// Whether an execution's diagnosis says the provider's schema changed (then a
/// [`SchemaChange`] is worth looking up).
pub fn is_schema_change(diagnosis: &[Diagnosis]) -> bool {
    diagnosis.iter().any(|d| d.pattern == "schema_change")
}

/// The schema change to show for an execution, if its diagnosis is a schema change and the
/// provider's fields for the job's entity are known.
pub fn schema_change(
    job: &Job,
    diagnosis: &[Diagnosis],
    observed: Option<&ObservedFields>,
) -> Option<SchemaChange> {
    let observed = observed?;
    if !is_schema_change(diagnosis) {
        return None;
    }
    let mut missing: Vec<String> = Vec::new();
    for m in job.settings.mappings.iter().filter(|m| !m.optional) {
        // Only top-level names are observed, so `address.city` is missing when `address` is.
        let top = m.source.split('.').next().unwrap_or_default().to_string();
        if !observed.fields.contains(&top) && !missing.contains(&top) {
            missing.push(top);
        }
    }
    Some(SchemaChange {
        entity: job.entity.clone(),
        missing,
        added: observed.added(),
        removed: observed.removed(),
        changed_at: observed.changed_at,
        observed_at: observed.observed_at,
    })
}

/// Prevention hints for a job (R-I5), from the document's last section.
pub fn hints(job: &Job, token_expires_in_days: Option<i64>) -> Vec<String> {
    let mut out = Vec::new();
    if job.mode == Mode::Full {
        out.push("Start with incremental mode: full syncs process more records and are more likely to hit rate limits or timeouts.".into());
    }
    if job.settings.timeout_secs < 60 {
        out.push(
            "The timeout is very short; give long-running syncs enough time to complete.".into(),
        );
    } else if job.settings.timeout_secs > 6 * 3600 {
        out.push("The timeout is very long; failures may go undetected for hours.".into());
    }
    if let Some(days) = token_expires_in_days {
        if days <= 7 {
            out.push(format!(
                "Credentials expire in {days} day(s): re-authenticate before they do."
            ));
        }
    }
    let no_default = job
        .settings
        .mappings
        .iter()
        .filter(|m| !m.required && m.default.is_none())
        .count();
    if no_default > 0 {
        out.push(format!("{no_default} optional mapping(s) have no default value; a default prevents null validation errors."));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Counts, JobSettings, Schedule, Trigger};

    fn job() -> Job {
        Job {
            id: "j".into(),
            name: "customers".into(),
            connection_id: "c".into(),
            entity: "customers".into(),
            direction: crate::model::Direction::Pull,
            mode: Mode::Incremental,
            schedule: Schedule::Manual,
            settings: JobSettings::default(),
            enabled: true,
            watermark: None,
            next_run_at: None,
            created_at: chrono::DateTime::default(),
        }
    }

    fn exec(
        status: ExecutionStatus,
        kind: Option<FailureKind>,
        processed: u64,
        failed: u64,
    ) -> Execution {
        Execution {
            id: "e".into(),
            job_id: "j".into(),
            trigger: Trigger::Manual,
            attempt: 1,
            retry_of: None,
            status,
            mode: Mode::Full,
            created_at: chrono::DateTime::default(),
            due_at: chrono::DateTime::default(),
            started_at: None,
            finished_at: None,
            counts: Counts {
                processed,
                failed,
                created: processed - failed,
                ..Counts::default()
            },
            excluded: 0,
            batch_in_progress: None,
            failure_kind: kind,
            note: None,
            next_retry_at: None,
            request_retries: 0,
            rate_limit_waits: 0,
            record_id: None,
            retry: Default::default(),
            waiting: None,
            ran_by: None,
        }
    }

    fn ev(errors: &BTreeMap<RecordErrorKind, u64>) -> Evidence<'_> {
        Evidence {
            errors,
            fields: &[],
            fields_changed: false,
        }
    }

    #[test]
    fn r_i3_each_record_pattern_states_its_share_and_holds_only_past_its_threshold() {
        let fields = vec!["email".to_string()];
        let schema = |n: u64| BTreeMap::from([(RecordErrorKind::SchemaMismatch, n)]);
        let pattern = |e: &Execution, errs: &BTreeMap<RecordErrorKind, u64>, changed: bool| {
            let d = diagnose(
                e,
                &job(),
                &Evidence {
                    errors: errs,
                    fields: &fields,
                    fields_changed: changed,
                },
            );
            d.into_iter().next().unwrap()
        };
        // 10 of 2,000 missing a field: data quality, naming the field and the share.
        let few = pattern(
            &exec(ExecutionStatus::CompletedWithErrors, None, 2000, 10),
            &schema(10),
            false,
        );
        assert_eq!(few.pattern, "data_quality");
        assert!(
            few.likely_cause.contains("10 of 2,000 records (0.5 %)"),
            "{}",
            few.likely_cause
        );
        assert!(few.likely_cause.contains("fields: email"));
        assert_eq!(
            few.basis,
            Some(Basis {
                records: 10,
                processed: 2000
            })
        );
        // Half is not most: still data quality. One more than half: the provider changed.
        let half = pattern(
            &exec(ExecutionStatus::CompletedWithErrors, None, 20, 10),
            &schema(10),
            false,
        );
        assert_eq!(half.pattern, "data_quality");
        let most = pattern(
            &exec(
                ExecutionStatus::Failed,
                Some(FailureKind::CircuitBreaker),
                20,
                11,
            ),
            &schema(11),
            false,
        );
        assert_eq!(most.pattern, "schema_change");
        assert!(
            most.likely_cause.contains("11 of 20 records (55 %)"),
            "{}",
            most.likely_cause
        );
        // A field set that changed during the run makes even a few mismatches a change.
        let changed = pattern(
            &exec(ExecutionStatus::CompletedWithErrors, None, 2000, 10),
            &schema(10),
            true,
        );
        assert_eq!(changed.pattern, "schema_change");
        // Validation states its share too.
        let v = pattern(
            &exec(ExecutionStatus::CompletedWithErrors, None, 40, 2),
            &BTreeMap::from([(RecordErrorKind::ValidationError, 2)]),
            false,
        );
        assert_eq!(v.pattern, "validation");
        assert!(
            v.likely_cause.contains("2 of 40 records (5.0 %)"),
            "{}",
            v.likely_cause
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn r_i3_common_patterns_map_to_cause_resolution_and_action() {
        let none = BTreeMap::new();
        let first = |e: &Execution, errs: &BTreeMap<RecordErrorKind, u64>| {
            diagnose(e, &job(), &ev(errs)).into_iter().next().unwrap()
        };

        let auth = first(
            &exec(ExecutionStatus::Failed, Some(FailureKind::Auth), 0, 0),
            &none,
        );
        assert_eq!(
            (auth.pattern, auth.actions.as_slice()),
            ("auth", &[Action::Reauthenticate][..])
        );
        assert!(auth
            .resolution
            .starts_with("Re-authenticate the connection"));

        let rl = first(
            &exec(
                ExecutionStatus::Failed,
                Some(FailureKind::RateLimited),
                0,
                0,
            ),
            &none,
        );
        assert_eq!(rl.pattern, "rate_limit");
        assert!(rl
            .resolution
            .contains("Reduce the sync frequency or the batch size"));

        let mut intermittent = exec(ExecutionStatus::Completed, None, 40, 0);
        intermittent.request_retries = 2;
        let i = first(&intermittent, &none);
        assert_eq!(
            (i.pattern, i.actions.as_slice()),
            ("provider_instability", &[Action::WaitForRetry][..])
        );

        let schema = BTreeMap::from([(RecordErrorKind::SchemaMismatch, 10)]);
        let s = first(
            &exec(
                ExecutionStatus::Failed,
                Some(FailureKind::CircuitBreaker),
                10,
                10,
            ),
            &schema,
        );
        assert_eq!(
            (s.pattern, s.title.as_str()),
            ("schema_change", "All records fail with a schema error")
        );
        assert_eq!(s.actions, vec![Action::EditMappings]);

        let validation = BTreeMap::from([(RecordErrorKind::ValidationError, 2)]);
        let v = first(
            &exec(ExecutionStatus::CompletedWithErrors, None, 40, 2),
            &validation,
        );
        assert_eq!(v.pattern, "validation");
        assert_eq!(
            v.actions,
            vec![Action::OpenFailedRecords, Action::EditMappings]
        );

        assert!(
            diagnose(
                &exec(ExecutionStatus::Completed, None, 40, 0),
                &job(),
                &ev(&none)
            )
            .is_empty(),
            "nothing to explain"
        );
    }

    #[test]
    fn r_i5_hints_follow_the_prevention_section() {
        let mut j = job();
        j.mode = Mode::Full;
        j.settings.timeout_secs = 30;
        let h = hints(&j, Some(3));
        assert!(h
            .iter()
            .any(|x| x.starts_with("Start with incremental mode")));
        assert!(h.iter().any(|x| x.contains("timeout is very short")));
        assert!(h.iter().any(|x| x.contains("expire in 3 day")));
        assert!(hints(&job(), Some(30)).is_empty());
    }

    #[test]
    fn r_e5_schema_change_names_the_fields_to_remap_and_what_changed() {
        let mut j = job();
        j.settings.mappings = serde_json::from_value(serde_json::json!([
            {"source": "id", "target": "external_id"},
            {"source": "email", "target": "email", "required": true},
            {"source": "address.city", "target": "city"},
            {"source": "nickname", "target": "nickname", "optional": true},
        ]))
        .unwrap();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let list = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let observed = ObservedFields {
            fields: list(&["email_address", "id", "name"]),
            observed_at: at,
            previous: Some(list(&["address", "email", "id", "name"])),
            changed_at: Some(at),
        };
        let schema = diagnose(
            &exec(
                ExecutionStatus::Failed,
                Some(FailureKind::CircuitBreaker),
                10,
                10,
            ),
            &j,
            &ev(&BTreeMap::from([(RecordErrorKind::SchemaMismatch, 10)])),
        );
        let c = schema_change(&j, &schema, Some(&observed)).unwrap();
        assert_eq!(
            c.missing,
            list(&["email", "address"]),
            "optional `nickname` is not missing"
        );
        assert_eq!(c.added, list(&["email_address"]));
        assert_eq!(c.removed, list(&["address", "email"]));
        assert_eq!(c.changed_at, Some(at));

        let validation = diagnose(
            &exec(ExecutionStatus::CompletedWithErrors, None, 40, 2),
            &j,
            &ev(&BTreeMap::from([(RecordErrorKind::ValidationError, 2)])),
        );
        assert_eq!(
            schema_change(&j, &validation, Some(&observed)),
            None,
            "only a schema diagnosis shows the change"
        );
        assert_eq!(schema_change(&j, &schema, None), None);
    }
}
