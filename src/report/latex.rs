//! A table as LaTeX with booktabs: `$m \pm s$` per cell, the best of each column in bold,
//! labels escaped (unicode arrows and signs as math), for `\input` into a paper; it compiles
//! in a plain `article` with `\usepackage{booktabs}`.
use std::fmt::Write;

use super::Table;

/// The LaTeX text of `t` (a `table` environment).
pub fn table_latex(t: &Table) -> String {
    let mut spec = "l".to_string();
    let mut head = vec![escape(&t.row_title)];
    for (ci, c) in t.columns.iter().enumerate() {
        spec.push('c');
        head.push(escape(c));
        if t.has_reference(ci) {
            spec.push_str("cc");
            head.extend([format!("{} ref.", escape(c)), "$\\Delta$".to_string()]);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "% {}: {} (written by ktlab)", t.name, t.metric);
    out.push_str("\\begin{table}[t]\n  \\centering\n");
    let note = escape(&t.note());
    let caption = match &t.caption {
        Some(c) => format!("{} {note}", escape(c)),
        None => format!("{}. {note}", escape(&t.metric)),
    };
    let sources = t.sources();
    let caption = if sources.is_empty() {
        caption
    } else {
        format!(
            "{caption} References: {}.",
            sources.iter().map(|s| escape(s)).collect::<Vec<_>>().join("; ")
        )
    };
    let _ = writeln!(out, "  \\caption{{{caption}}}");
    let _ = writeln!(out, "  \\label{{tab:{}}}", t.name);
    let _ = writeln!(out, "  \\begin{{tabular}}{{{spec}}}");
    out.push_str("    \\toprule\n");
    let _ = writeln!(out, "    {} \\\\", head.join(" & "));
    out.push_str("    \\midrule\n");
    for (ri, row) in t.rows.iter().enumerate() {
        let mut cells = vec![escape(row)];
        for ci in 0..t.columns.len() {
            let cell = &t.cells[ri][ci];
            cells.push(match cell {
                None => "--".to_string(),
                Some(c) => {
                    let inner = if c.n > 1 {
                        format!("{} \\pm {}", t.fmt(c.mean), t.fmt(c.std))
                    } else {
                        t.fmt(c.mean)
                    };
                    let mut s = if t.is_best(ri, ci) {
                        format!("$\\mathbf{{{inner}}}$")
                    } else {
                        format!("${inner}$")
                    };
                    if let Some(n) = t.shown_n(ri, ci) {
                        s.push_str(&format!(" {{\\scriptsize ($n={n}$)}}"));
                    }
                    s
                }
            });
            if t.has_reference(ci) {
                let rf = t.references[ri][ci].as_ref();
                cells.push(rf.map(|r| format!("${}$", t.fmt(r.value))).unwrap_or_else(|| "--".into()));
                cells.push(match (cell, rf) {
                    (Some(c), Some(r)) => format!("${}$", t.fmt_delta(c.mean, r.value)),
                    _ => "--".into(),
                });
            }
        }
        let _ = writeln!(out, "    {} \\\\", cells.join(" & "));
    }
    out.push_str("    \\bottomrule\n  \\end{tabular}\n\\end{table}\n");
    out
}

/// Text made safe for LaTeX: its special characters escaped, arrows and a few signs as math.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            '→' => out.push_str("$\\rightarrow$"),
            '←' => out.push_str("$\\leftarrow$"),
            '↔' => out.push_str("$\\leftrightarrow$"),
            '⇒' => out.push_str("$\\Rightarrow$"),
            '±' => out.push_str("$\\pm$"),
            '×' => out.push_str("$\\times$"),
            '≤' => out.push_str("$\\leq$"),
            '≥' => out.push_str("$\\geq$"),
            'Δ' => out.push_str("$\\Delta$"),
            'μ' => out.push_str("$\\mu$"),
            '–' => out.push_str("--"),
            '—' => out.push_str("---"),
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
