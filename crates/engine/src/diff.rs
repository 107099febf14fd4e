//! What changed between two versions of a setting, as `path: before → after` lines for the
//! audit log (issue 14: every settings change is audited with before → after).

use serde_json::Value;

/// Changed leaves of `after` against `before`, by dotted path, in key order. Lists are
/// compared whole: a mapping list that changed is one line.
pub(crate) fn changes(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, av) in a {
                // Times the engine moves on its own are not the admin's changes.
                if matches!(k.as_str(), "next_run_at" | "updated_at" | "watermark") {
                    continue;
                }
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(&p, b.get(k).unwrap_or(&Value::Null), av, out);
            }
        }
        (b, a) if b != a => out.push(format!("{path}: {} → {}", show(b), show(a))),
        _ => {}
    }
}

/// A value as the log shows it: strings bare, anything long cut short.
fn show(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".into(),
        other => other.to_string(),
    };
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(79).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_leaves_are_listed_before_to_after_and_engine_times_left_out() {
        let before = json!({"name": "a", "settings": {"batch_size": 100, "alerts": {"on_failure": false}}, "next_run_at": 1});
        let after = json!({"name": "a", "settings": {"batch_size": 50, "alerts": {"on_failure": true}}, "next_run_at": 2});
        assert_eq!(
            changes(&before, &after),
            vec![
                "settings.alerts.on_failure: false → true",
                "settings.batch_size: 100 → 50",
            ]
        );
        assert!(changes(&after, &after).is_empty());
        let long = json!({"x": "y".repeat(200)});
        assert!(changes(&json!({"x": "z"}), &long)[0].ends_with('…'));
    }
}
