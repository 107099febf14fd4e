//! Small encoding helpers (URL query/form encoding, base64 for HTTP Basic) so the sandbox can
//! parse lenient client input without pulling in extra crates.

use std::collections::HashMap;

/// Decodes an `application/x-www-form-urlencoded` string (also used for query strings).
/// Later duplicates win; malformed escapes are kept literally rather than rejected.
pub(crate) fn parse_form(raw: &str) -> HashMap<String, String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(&[hi, lo]) if bytes[i] == b'%' => hex_val(hi).zip(hex_val(lo)),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass through).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on any invalid character.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in s.trim_end_matches('=').bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let m = parse_form("a=1&b=x+y%3A%2b&c&d=%zz&a=2");
        assert_eq!(m.get("a").map(String::as_str), Some("2"));
        assert_eq!(m.get("b").map(String::as_str), Some("x y:+"));
        assert_eq!(m.get("c").map(String::as_str), Some(""));
        assert_eq!(m.get("d").map(String::as_str), Some("%zz"));
    }

    #[test]
    fn encoding_round_trips() {
        let s = "2026-01-01T00:00:00+01:00";
        assert_eq!(percent_encode(s), "2026-01-01T00%3A00%3A00%2B01%3A00");
        assert_eq!(parse_form(&format!("x={}", percent_encode(s)))["x"], s);
    }

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode("c2FuZGJveC1jbGllbnQ6c2VjcmV0"),
            Some(b"sandbox-client:secret".to_vec())
        );
        assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
        assert_eq!(base64_decode("a*b"), None);
    }
}
