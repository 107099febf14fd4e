//! Pure failure policies: request backoff (R-E2), Retry-After (R-E3), the circuit breaker
//! (R-B), dead-letter strikes (R-D1) and the execution retry schedule (R-A1). No I/O here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Waits between attempts of one failing request: 1 s, 5 s, 15 s by default (R-E2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff(pub Vec<Duration>);

impl Default for Backoff {
    fn default() -> Self {
        Backoff(vec![
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(15),
        ])
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0-based), or `None` once retries are used up.
    pub fn delay(&self, retry: u32) -> Option<Duration> {
        self.0.get(retry as usize).copied()
    }
    /// How many retries follow the first attempt.
    pub fn retries(&self) -> u32 {
        self.0.len() as u32
    }
}

/// Parse a `Retry-After` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
/// A date in the past means "now".
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at: DateTime<Utc> = at.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Wait suggested by rate-limit headers when no 429 was sent yet, so 429s stay rare:
/// when the provider says none remain, wait until its reset.
pub fn pace_from_headers(
    remaining: Option<&str>,
    reset: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let remaining: u64 = remaining?.trim().parse().ok()?;
    if remaining > 0 {
        return None;
    }
    let reset: i64 = reset?.trim().parse().ok()?;
    // Providers send either seconds-until-reset or a unix timestamp; tell them apart by size.
    let wait = if reset > 1_000_000_000 {
        reset.saturating_sub(now.timestamp())
    } else {
        reset
    };
    Some(Duration::from_secs(wait.clamp(0, 3600) as u64))
}

/// The circuit breaker of one execution (R-B1): trips once more than half of the processed
/// records failed and at least ten were processed. A new breaker per execution is the reset
/// (R-B3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    /// Records that must be processed before the breaker may trip.
    pub min_processed: u64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { min_processed: 10 }
    }
}

impl Breaker {
    /// Whether `failed` of `processed` trips the breaker.
    pub fn tripped(&self, processed: u64, failed: u64) -> bool {
        processed >= self.min_processed && failed * 2 > processed
    }

    /// The note stored on an execution the breaker halted.
    pub fn note(processed: u64, failed: u64) -> String {
        format!(
            "Stopped early: {failed} of {processed} processed records failed (more than half, with \
             at least 10 processed); the remaining records were not processed"
        )
    }
}

/// Per-record failure state across executions (R-D1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Last attempt succeeded (or never failed).
    #[default]
    Ok,
    /// Failed in at least one execution, fewer than three.
    Failing,
    /// Failed in three separate executions; excluded from runs (R-D2).
    DeadLetter,
    /// Dismissed by an admin; never retried automatically (R-D5).
    Dismissed,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Ok => "ok",
            RecordState::Failing => "failing",
            RecordState::DeadLetter => "dead_letter",
            RecordState::Dismissed => "dismissed",
        }
    }
    pub fn parse(s: &str) -> RecordState {
        match s {
            "failing" => RecordState::Failing,
            "dead_letter" => RecordState::DeadLetter,
            "dismissed" => RecordState::Dismissed,
            _ => RecordState::Ok,
        }
    }
    /// Whether runs skip the record.
    pub fn excluded(self) -> bool {
        matches!(self, RecordState::DeadLetter | RecordState::Dismissed)
    }
}

/// Failed executions after which a record becomes a dead letter.
pub const DEAD_LETTER_STRIKES: u32 = 3;

/// A record's strike count and which execution gave the last one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Strikes {
    pub state: RecordState,
    pub count: u32,
    pub last_execution: Option<String>,
}

impl Strikes {
    /// The state after the record failed in `execution`. Failures within one execution count
    /// once; a dead letter stays a dead letter (its attempts still go up on a manual retry).
    pub fn after_failure(&self, execution: &str) -> Strikes {
        if self.last_execution.as_deref() == Some(execution) {
            return self.clone();
        }
        let count = self.count + 1;
        let state = match self.state {
            RecordState::Dismissed => RecordState::Dismissed,
            _ if count >= DEAD_LETTER_STRIKES => RecordState::DeadLetter,
            _ => RecordState::Failing,
        };
        Strikes {
            state,
            count,
            last_execution: Some(execution.to_string()),
        }
    }

    /// The state after a success: everything resets.
    pub fn after_success(&self) -> Strikes {
        Strikes::default()
    }
}

/// Delays before automatic retry executions: 5 min, 30 min, 2 h; beyond the third the last
/// delay repeats (R-A1 decision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrySchedule(pub Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule(vec![
            Duration::from_secs(5 * 60),
            Duration::from_secs(30 * 60),
            Duration::from_secs(2 * 60 * 60),
        ])
    }
}

/// What happens after an execution ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryDecision {
    /// Not a failure that is retried (success, completed_with_errors, cancelled, or retry off).
    None,
    /// Schedule retry execution `attempt` after `delay`.
    Schedule { attempt: u32, delay: Duration },
    /// Retries are used up (R-A4).
    Exhausted,
}

impl RetrySchedule {
    /// Delay before the `n`th retry (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let i = (n.max(1) - 1) as usize;
        self.0
            .get(i)
            .or(self.0.last())
            .copied()
            .unwrap_or(Duration::from_secs(300))
    }

    /// Decide, for an execution that ended with `retryable_failure` (failed or timed out) at
    /// `attempt` (1 = the original run), whether and when the next retry runs.
    pub fn decide(
        &self,
        retryable_failure: bool,
        retry_on_failure: bool,
        max_retries: u32,
        attempt: u32,
    ) -> RetryDecision {
        if !retryable_failure || !retry_on_failure {
            return RetryDecision::None;
        }
        let retries_done = attempt.saturating_sub(1);
        if retries_done >= max_retries {
            return RetryDecision::Exhausted;
        }
        RetryDecision::Schedule {
            attempt: attempt + 1,
            delay: self.delay(retries_done + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn r_e2_default_backoff_is_1_5_15_seconds() {
        let b = Backoff::default();
        assert_eq!(b.delay(0), Some(Duration::from_secs(1)));
        assert_eq!(b.delay(1), Some(Duration::from_secs(5)));
        assert_eq!(b.delay(2), Some(Duration::from_secs(15)));
        assert_eq!(b.delay(3), None);
    }

    #[test]
    fn r_e3_retry_after_seconds_and_http_date() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T14:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 14:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 13:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn p4_absurd_retry_after_and_reset_values_never_panic() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(
            parse_retry_after("100000000000000", now),
            Some(Duration::from_secs(100_000_000_000_000))
        );
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("18446744073709551616", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now).map(|d| d > Duration::ZERO),
            Some(true)
        );
        for reset in [
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
        ] {
            let w = pace_from_headers(Some("0"), Some(reset), now);
            assert!(
                w.is_none_or(|w| w <= Duration::from_secs(3600)),
                "{reset}: {w:?}"
            );
        }
    }

    #[test]
    fn r_e3_pacing_waits_for_reset_only_when_none_remain() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(pace_from_headers(Some("3"), Some("10"), now), None);
        assert_eq!(
            pace_from_headers(Some("0"), Some("10"), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            pace_from_headers(Some("0"), Some("1800000020"), now),
            Some(Duration::from_secs(20))
        );
    }

    #[test]
    fn r_b1_breaker_boundaries() {
        let b = Breaker::default();
        assert!(!b.tripped(9, 9), "fewer than ten processed never trips");
        assert!(!b.tripped(10, 5), "exactly half is not more than half");
        assert!(b.tripped(10, 6));
        assert!(b.tripped(11, 6));
    }

    #[test]
    fn r_a1_schedule_5m_30m_2h_then_exhausted() {
        let s = RetrySchedule::default();
        let d = |attempt| s.decide(true, true, 3, attempt);
        assert_eq!(
            d(1),
            RetryDecision::Schedule {
                attempt: 2,
                delay: Duration::from_secs(300)
            }
        );
        assert_eq!(
            d(2),
            RetryDecision::Schedule {
                attempt: 3,
                delay: Duration::from_secs(1800)
            }
        );
        assert_eq!(
            d(3),
            RetryDecision::Schedule {
                attempt: 4,
                delay: Duration::from_secs(7200)
            }
        );
        assert_eq!(d(4), RetryDecision::Exhausted);
        assert_eq!(s.decide(false, true, 3, 1), RetryDecision::None);
        assert_eq!(s.decide(true, false, 3, 1), RetryDecision::None);
    }

    proptest! {
        #[test]
        fn r_b1_breaker_trips_iff_majority_of_at_least_ten(processed in 0u64..500, failed_frac in 0.0f64..=1.0) {
            let failed = (processed as f64 * failed_frac).floor() as u64;
            let tripped = Breaker::default().tripped(processed, failed);
            prop_assert_eq!(tripped, processed >= 10 && (failed as f64) > processed as f64 / 2.0);
        }

        #[test]
        fn r_d1_strikes_count_executions_not_failures(execs in proptest::collection::vec((0u8..4, any::<bool>()), 0..40)) {
            // Each item: an execution id (small range, so repeats happen back to back) and
            // whether the record failed in it.
            let mut s = Strikes::default();
            let mut model_count = 0u32;
            let mut last: Option<String> = None;
            for (i, (e, failed)) in execs.iter().enumerate() {
                let id = format!("exec-{i}-{e}");
                // The same execution may report a record twice (normal pass + re-attempt pass).
                let repeats = if *e == 0 { 2 } else { 1 };
                for _ in 0..repeats {
                    if *failed {
                        s = s.after_failure(&id);
                    } else {
                        s = s.after_success();
                    }
                }
                if *failed {
                    if last.as_deref() != Some(id.as_str()) { model_count += 1; }
                    last = Some(id);
                } else {
                    model_count = 0;
                    last = None;
                }
                prop_assert_eq!(s.count, model_count);
                let expected = match model_count { 0 => RecordState::Ok, 1 | 2 => RecordState::Failing, _ => RecordState::DeadLetter };
                prop_assert_eq!(s.state, expected);
            }
        }

        #[test]
        fn r_a1_retry_attempts_never_exceed_max(max in 0u32..8, start in 1u32..12) {
            let s = RetrySchedule::default();
            let mut attempt = start;
            let mut scheduled = 0;
            loop {
                match s.decide(true, true, max, attempt) {
                    RetryDecision::Schedule { attempt: next, delay } => {
                        prop_assert_eq!(next, attempt + 1);
                        prop_assert!(delay >= Duration::from_secs(300) && delay <= Duration::from_secs(7200));
                        attempt = next;
                        scheduled += 1;
                        prop_assert!(scheduled <= max);
                    }
                    RetryDecision::Exhausted => break,
                    RetryDecision::None => prop_assert!(false, "failure with retry on is never None"),
                }
            }
            prop_assert_eq!(attempt - 1, max.max(start - 1));
        }
    }
}
