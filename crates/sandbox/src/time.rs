//! Logical time: record timestamps come from a fixed base plus counters, never the wall clock,
//! so data is reproducible and incremental sync can be tested without waiting.

use crate::emit::{push_padded, via_emit, Emit};

/// 2026-01-01T00:00:00Z as Unix seconds: record `i` is first updated at `EPOCH + i`.
pub(crate) const EPOCH: i64 = 1_767_225_600;

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's `civil_from_days`; hand-rolled
/// because formatting a timestamp per served record has to be cheap and allocation-free.
pub(crate) const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rfc3339(pub(crate) i64);

impl Emit for Rfc3339 {
    fn emit(&self, out: &mut Vec<u8>) {
        let secs = self.0.rem_euclid(86_400) as u64;
        Day(self.0.div_euclid(86_400)).emit(out);
        out.push(b'T');
        push_padded(out, secs / 3_600, 2);
        out.push(b':');
        push_padded(out, secs / 60 % 60, 2);
        out.push(b':');
        push_padded(out, secs % 60, 2);
        out.push(b'Z');
    }
}

/// Formats days since the Unix epoch as `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Day(pub(crate) i64);

impl Emit for Day {
    fn emit(&self, out: &mut Vec<u8>) {
        let (y, m, d) = civil_from_days(self.0);
        push_padded(out, y.max(0) as u64, 4);
        out.push(b'-');
        push_padded(out, u64::from(m), 2);
        out.push(b'-');
        push_padded(out, u64::from(d), 2);
    }
}

via_emit!(Rfc3339, Day);

/// Parses an `updated_since` value into the smallest whole second that satisfies
/// `updated_at >= since`; record timestamps have whole-second precision, so a fractional
/// bound rounds up.
pub(crate) fn parse_since(raw: &str) -> Option<i64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(raw).ok().or_else(|| {
        // An unencoded `+00:00` offset arrives as a space after form decoding; accepting it
        // saves every client author the same debugging session.
        raw.contains(' ')
            .then(|| chrono::DateTime::parse_from_rfc3339(&raw.replace(' ', "+")).ok())
            .flatten()
    })?;
    let secs = parsed.timestamp();
    Some(if parsed.timestamp_subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_leap_days() {
        assert_eq!(Rfc3339(EPOCH).to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(
            Rfc3339(EPOCH + 86_400 + 3_661).to_string(),
            "2026-01-02T01:01:01Z"
        );
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Day(EPOCH / 86_400 - 307).to_string(), "2025-02-28");
        assert_eq!(Day(19_782).to_string(), "2024-02-29");
    }

    #[test]
    fn agrees_with_chrono() {
        for secs in (0..4_000_000_000i64).step_by(7_777_777) {
            let ours = Rfc3339(secs).to_string();
            let theirs = chrono::DateTime::from_timestamp(secs, 0)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(Some(ours), theirs);
        }
    }

    #[test]
    fn since_parsing_rounds_up_and_tolerates_unencoded_plus() {
        assert_eq!(parse_since("2026-01-01T00:00:00Z"), Some(EPOCH));
        assert_eq!(parse_since("2026-01-01T00:00:00.5Z"), Some(EPOCH + 1));
        assert_eq!(parse_since("2026-01-01T01:00:00 01:00"), Some(EPOCH));
        assert_eq!(parse_since("yesterday"), None);
    }
}
