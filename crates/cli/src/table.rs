//! Plain-text tables for terminal output.

/// The widest a cell is shown, in characters; longer text ends in `…` (the full value is in
/// `--json` and `show`). It also keeps pad widths far below what `format!` accepts (a
/// 65,536-character job name made every `job list` panic).
pub const MAX_CELL: usize = 60;

/// A cell as shown: one line (control characters become spaces), at most [`MAX_CELL`]
/// characters, cut on a character boundary.
pub fn cell(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .by_ref()
        .take(MAX_CELL)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.next().is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// Columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(head: &[&str]) -> Self {
        Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| cell(c)).collect());
    }
    pub fn render(&self) -> String {
        let n = self.head.len();
        let mut w: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate().take(n) {
                if i + 1 == n {
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    let pad = w[i] - c.chars().count() + 2;
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&self.head);
        out.push('\n');
        out.push_str(
            &w.iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["a", "bb"]);
        t.row(vec!["long".into(), "x".into()]);
        assert_eq!(t.render(), "a     bb\n----  --\nlong  x\n");
    }

    #[test]
    fn p3_long_cells_are_cut_on_a_character_boundary_not_a_panic() {
        let mut t = Table::new(&["NAME", "ENTITY"]);
        let long = "é".repeat(70_000);
        t.row(vec![long.clone(), "customers".into()]);
        t.row(vec!["ok\nnext".into(), "x".repeat(60)]);
        let out = t.render();
        let lines: Vec<&str> = out.lines().collect();
        let shown = format!("{}…", "é".repeat(MAX_CELL - 1));
        assert_eq!(lines[2], format!("{shown}  customers"));
        assert_eq!(
            lines[3],
            format!("ok next{}  {}", " ".repeat(53), "x".repeat(60))
        );
        assert_eq!(cell(&"a".repeat(61)).chars().count(), MAX_CELL);
        assert_eq!(cell("short"), "short");
    }
}
