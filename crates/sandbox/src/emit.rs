//! Allocation-free text output for the serving fast path: values write their raw bytes straight
//! into the page buffer, skipping `fmt` machinery and JSON escaping. Everything emitted here is
//! plain ASCII without quotes or backslashes, so it is already valid JSON string content.

/// A value that can write itself as raw (already JSON-safe) text.
pub(crate) trait Emit {
    fn emit(&self, out: &mut Vec<u8>);

    /// The same text as an owned string, for the slow (serde_json::Value) path.
    fn text(&self) -> String {
        let mut out = Vec::with_capacity(32);
        self.emit(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Emit for &'static str {
    fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

/// Decimal digits of `n`.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    push_padded(out, n, 1);
}

/// Decimal digits of `n`, left-padded with zeros to at least `width`.
pub(crate) fn push_padded(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len().saturating_sub(width));
    out.extend_from_slice(&digits[start..]);
}

/// Writes `lead` (punctuation and key) then `value` as a JSON string.
pub(crate) fn str_field(out: &mut Vec<u8>, lead: &[u8], value: &impl Emit) {
    out.extend_from_slice(lead);
    out.push(b'"');
    value.emit(out);
    out.push(b'"');
}

/// Writes `lead` then `value` as a JSON number.
pub(crate) fn num_field(out: &mut Vec<u8>, lead: &[u8], value: u64) {
    out.extend_from_slice(lead);
    push_u64(out, value);
}

/// Writes `lead` then `value` as a JSON boolean.
pub(crate) fn bool_field(out: &mut Vec<u8>, lead: &[u8], value: bool) {
    out.extend_from_slice(lead);
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// Gives `Emit` types `Display` and a string `Serialize` for the rarely used slow paths.
macro_rules! via_emit {
    ($($t:ty),* $(,)?) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&$crate::emit::Emit::text(self))
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$crate::emit::Emit::text(self))
            }
        }
    )*};
}
pub(crate) use via_emit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        out.push(b' ');
        push_padded(&mut out, 42, 8);
        out.push(b' ');
        push_padded(&mut out, 123_456_789, 8);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "0 18446744073709551615 00000042 123456789"
        );
    }
}
