//! A table as Markdown: `mean ± std` per cell, the best of each column in bold, the count
//! where it differs, and beside a column with reference values the reference and our
//! difference to it.
use std::fmt::Write;

use super::Table;

/// The Markdown text of `t`.
pub fn table_markdown(t: &Table) -> String {
    let mut out = format!("### {} ({})\n\n", t.name, t.metric);
    if let Some(c) = &t.caption {
        let _ = writeln!(out, "{}\n", escape(c));
    }
    let mut head = vec![escape(&t.row_title)];
    let mut align = vec![":---".to_string()];
    for (ci, c) in t.columns.iter().enumerate() {
        head.push(escape(c));
        align.push("---:".into());
        if t.has_reference(ci) {
            head.extend([format!("{} ref.", escape(c)), "Δ".to_string()]);
            align.extend(["---:".into(), "---:".into()]);
        }
    }
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}|", align.join("|"));
    for (ri, row) in t.rows.iter().enumerate() {
        let mut cells = vec![escape(row)];
        for ci in 0..t.columns.len() {
            let cell = &t.cells[ri][ci];
            cells.push(match cell {
                None => "–".to_string(),
                Some(c) => {
                    let mut s = if c.n > 1 {
                        format!("{} ± {}", t.fmt(c.mean), t.fmt(c.std))
                    } else {
                        t.fmt(c.mean)
                    };
                    if t.is_best(ri, ci) {
                        s = format!("**{s}**");
                    }
                    if let Some(n) = t.shown_n(ri, ci) {
                        s.push_str(&format!(" (n={n})"));
                    }
                    s
                }
            });
            if t.has_reference(ci) {
                let rf = t.references[ri][ci].as_ref();
                cells.push(rf.map(|r| t.fmt(r.value)).unwrap_or_else(|| "–".into()));
                cells.push(match (cell, rf) {
                    (Some(c), Some(r)) => t.fmt_delta(c.mean, r.value),
                    _ => "–".into(),
                });
            }
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\n{}", t.note());
    let sources = t.sources();
    if !sources.is_empty() {
        let _ = writeln!(
            out,
            "References: {}.",
            sources.iter().map(|s| escape(s)).collect::<Vec<_>>().join("; ")
        );
    }
    out
}

/// Keeps a label from breaking the table (`|`) or turning into emphasis.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '|' | '*' | '_' | '`' | '\\') {
            out.push('\\');
        }
        if ch == '\n' {
            out.push(' ');
        } else {
            out.push(ch);
        }
    }
    out
}
