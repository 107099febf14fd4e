//! What differs in statement text between the backends: placeholders. Statements are
//! written once with SQLite's `?` and `?N`; PostgreSQL numbers its own (`$N`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// SQLite: statements as written.
pub(crate) mod sqlite {
    pub(crate) fn sql(text: &str) -> &str {
        text
    }
}

/// PostgreSQL: each distinct statement is translated once and kept (the store has a fixed
/// set of statement shapes, so this does not grow with use).
pub(crate) mod pg {
    use super::*;

    static TRANSLATED: LazyLock<Mutex<HashMap<String, &'static str>>> =
        LazyLock::new(Default::default);

    pub(crate) fn sql(text: &str) -> &'static str {
        let mut cache = TRANSLATED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = cache.get(text) {
            return done;
        }
        let done: &'static str = Box::leak(super::numbered(text).into_boxed_str());
        cache.insert(text.to_string(), done);
        done
    }
}

/// `text` with SQLite's placeholders as `$N`: `?N` keeps its number, a bare `?` takes the
/// next one after the largest so far (SQLite's own rule). Quoted text and identifiers are
/// left alone.
pub(crate) fn numbered(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    let mut largest = 0u32;
    let mut quote: Option<char> = None;
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                out.push(ch);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = if digits.is_empty() {
                    largest + 1
                } else {
                    digits.parse().unwrap_or(largest + 1)
                };
                largest = largest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            (None, c) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_as_sqlite_numbers_them() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c = ? LIMIT ?"),
            "SELECT a FROM t WHERE b = $1 AND c = $2 LIMIT $3"
        );
        assert_eq!(
            numbered("WHERE id = ?1 OR name = ?1 OR x >= ?3 AND y < ?2 AND z = ?"),
            "WHERE id = $1 OR name = $1 OR x >= $3 AND y < $2 AND z = $4"
        );
        assert_eq!(
            numbered("SELECT '?', \"a?\" FROM t WHERE note = 'it''s ?' AND v = ?"),
            "SELECT '?', \"a?\" FROM t WHERE note = 'it''s ?' AND v = $1"
        );
    }
}
