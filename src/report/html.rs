//! `index.html`: the results folder as one self-contained page, readable offline: the
//! decisions with their outcomes, every table with its caption, reference values and plot,
//! the training curves (the folder's SVGs inline: no script, no stylesheet or font fetched), behind every cell its
//! provenance (opened by its link: the CSS `:target` of `#cell-...`, no script), the time
//! each stage instance took and where, the versions, and the experiment file. Made from
//! the store and the folder's own files only, so `ktlab report` rebuilds it byte for byte.
use std::fmt::Write;
use std::path::Path;

use super::{Decided, Table};
use crate::plan::{human_seconds, Plan, TRAINING_CURVES};
use crate::store::{EntryState, Store};

/// The page's file name in a results folder.
pub const INDEX_HTML: &str = "index.html";

/// Writes `index.html` into `dir` (the results folder being written, its tables' SVGs,
/// `training_curves.svg` and `experiment.toml` already there).
pub fn write_html(
    plan: &Plan,
    tables: &[Table],
    decided: &[Decided],
    store: &Store,
    dir: &Path,
    computed: Option<&str>,
) -> std::io::Result<()> {
    let svg = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.svg"))).ok();
    let experiment = std::fs::read_to_string(dir.join("experiment.toml")).unwrap_or_default();
    let page = html_page(plan, tables, decided, store, computed, &experiment, &svg);
    super::results::write_atomic(&dir.join(INDEX_HTML), page.as_bytes())
}

/// `&`, `<`, `>`, `"` and `'` as entities.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A name as an id: letters, digits, `-` and `_` kept, anything else `-`.
fn id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The id of a cell's provenance: `cell-<table>-<row>-<column>` (positions).
pub fn cell_id(table: &str, row: usize, column: usize) -> String {
    format!("cell-{}-{row}-{column}", id(table))
}

/// Seconds since the epoch (a manifest's `started`) as RFC 3339 UTC.
fn date(unix: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix.floor() as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "?".to_string())
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}\
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .6em}\
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best a{font-weight:bold}td.ref{color:#666}\
td a{color:inherit;text-decoration:none;border-bottom:1px dotted #888}td a:hover{background:#eef}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}\
.cell{display:none;border:2px solid #4a7;background:#f6fbf7;padding:.5em 1em;margin:.5em 0}\
.cell:target{display:block}.key{font-family:monospace;font-size:.9em}\
pre{background:#f4f4f4;padding:1em;overflow-x:auto}dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}\
dl.meta dt{font-weight:bold}.caption{font-style:italic}";

fn html_page(
    plan: &Plan,
    tables: &[Table],
    decided: &[Decided],
    store: &Store,
    computed: Option<&str>,
    experiment: &str,
    svg: &dyn Fn(&str) -> Option<String>,
) -> String {
    let manifests: Vec<Option<crate::store::Manifest>> = plan
        .instances
        .iter()
        .map(|i| match store.state(i.kind, &i.key, false) {
            EntryState::Valid(m) => Some(*m),
            _ => None,
        })
        .collect();
    let mut out = String::new();
    let title = esc(&plan.experiment);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}: ktlab results</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    // What it is, when it was computed, with what, at what cost.
    let total: f64 = manifests.iter().flatten().map(|m| m.seconds).sum();
    let mut versions: Vec<String> = manifests
        .iter()
        .flatten()
        .map(|m| format!("ktlab {}, libtorch {}", m.ktlab_version, m.libtorch_version))
        .collect();
    versions.sort();
    versions.dedup();
    let mut hosts: Vec<&str> = manifests.iter().flatten().map(|m| m.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    out.push_str("<dl class=\"meta\">\n");
    let file = plan.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut meta = vec![
        ("experiment file", format!("<a href=\"#experiment\">{}</a>", esc(&file))),
        ("computed", esc(computed.unwrap_or("?"))),
        (
            "cost",
            format!(
                "{} of stage time over {} stage instances (<a href=\"#stages\">each</a>)",
                esc(&human_seconds(total)),
                plan.instances.len()
            ),
        ),
        ("versions", esc(&versions.join("; "))),
        ("hosts", esc(&hosts.join(", "))),
    ];
    if plan.seed_axis {
        let mut seeds: Vec<u64> = plan.variants.iter().filter_map(|v| v.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        meta.push(("seeds", esc(&seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "))));
    }
    for (k, v) in meta {
        let _ = writeln!(out, "<dt>{k}</dt><dd>{v}</dd>");
    }
    out.push_str("</dl>\n<p>Each value links to the stage instances behind it (keys, seeds, values).</p>\n");
    // Contents.
    out.push_str("<nav><ul>\n");
    if !decided.is_empty() {
        out.push_str("<li><a href=\"#decisions\">decisions</a></li>\n");
    }
    for t in tables {
        let _ = writeln!(out, "<li><a href=\"#table-{}\">{}</a></li>", id(&t.name), esc(&t.name));
    }
    let curves = svg(TRAINING_CURVES);
    if curves.is_some() {
        out.push_str("<li><a href=\"#training-curves\">training curves</a></li>\n");
    }
    out.push_str("<li><a href=\"#stages\">stage instances and their times</a></li>\n<li><a href=\"#experiment\">experiment file</a></li>\n</ul></nav>\n");
    if !decided.is_empty() {
        decisions_section(&mut out, decided);
    }
    for t in tables {
        table_section(&mut out, plan, t, &manifests, svg(&t.name));
    }
    if let Some(s) = curves {
        let _ = write!(
            out,
            "<section id=\"training-curves\">\n<h2>Training curves</h2>\n<figure class=\"plot\">\n{}\n</figure>\n</section>\n",
            s.trim()
        );
    }
    stages_section(&mut out, plan, &manifests);
    let _ = write!(
        out,
        "<section id=\"experiment\">\n<h2>Experiment file</h2>\n<p>experiment.toml in this folder, as run:</p>\n<pre>{}</pre>\n</section>\n</body>\n</html>\n",
        esc(experiment)
    );
    out
}

fn table_section(out: &mut String, plan: &Plan, t: &Table, manifests: &[Option<crate::store::Manifest>], plot: Option<String>) {
    let _ = writeln!(
        out,
        "<section id=\"table-{}\">\n<h2>{} ({})</h2>",
        id(&t.name),
        esc(&t.name),
        esc(&t.metric)
    );
    if let Some(c) = &t.caption {
        let _ = writeln!(out, "<p class=\"caption\">{}</p>", esc(c));
    }
    out.push_str("<table class=\"results\">\n<thead><tr>");
    let _ = write!(out, "<th>{}</th>", esc(&t.row_title));
    for (ci, c) in t.columns.iter().enumerate() {
        let _ = write!(out, "<th>{}</th>", esc(c));
        if t.has_reference(ci) {
            let _ = write!(out, "<th>{} ref.</th><th>Δ</th>", esc(c));
        }
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (ri, row) in t.rows.iter().enumerate() {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(row));
        for ci in 0..t.columns.len() {
            let cell = &t.cells[ri][ci];
            match cell {
                None => out.push_str("<td class=\"num\">–</td>"),
                Some(c) => {
                    let mut s = if c.n > 1 {
                        format!("{} ± {}", t.fmt(c.mean), t.fmt(c.std))
                    } else {
                        t.fmt(c.mean)
                    };
                    if let Some(n) = t.shown_n(ri, ci) {
                        s.push_str(&format!(" (n={n})"));
                    }
                    let class = if t.is_best(ri, ci) { "num best" } else { "num" };
                    let _ = write!(
                        out,
                        "<td class=\"{class}\"><a href=\"#{}\" title=\"the stage instances behind this value\">{}</a></td>",
                        cell_id(&t.name, ri, ci),
                        esc(&s)
                    );
                }
            }
            if t.has_reference(ci) {
                let rf = t.references[ri][ci].as_ref();
                let value = rf.map(|r| t.fmt(r.value)).unwrap_or_else(|| "–".into());
                let delta = match (cell, rf) {
                    (Some(c), Some(r)) => t.fmt_delta(c.mean, r.value),
                    _ => "–".into(),
                };
                let _ = write!(
                    out,
                    "<td class=\"num ref\">{}</td><td class=\"num\">{}</td>",
                    esc(&value),
                    esc(&delta)
                );
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(&t.note()));
    let sources = t.sources();
    if !sources.is_empty() {
        let _ = writeln!(out, "<p class=\"note\">References: {}.</p>", esc(&sources.join("; ")));
    }
    // Each cell's provenance, shown under the table when its link is followed.
    for (ri, row) in t.rows.iter().enumerate() {
        for (ci, column) in t.columns.iter().enumerate() {
            let instances = &t.instances[ri][ci];
            if instances.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "<div class=\"cell\" id=\"{}\">\n<h3>{} / {} / {}: {} value(s)</h3>\n<table>\n<thead><tr><th>value</th><th>stage [variant]</th><th>kind</th><th>seeds</th><th>key</th><th>time</th></tr></thead>\n<tbody>",
                cell_id(&t.name, ri, ci),
                esc(&t.name),
                esc(row),
                esc(column),
                instances.len()
            );
            for &(i, value) in instances {
                let p = super::instance_provenance(plan, i);
                let uses: Vec<String> = plan.instances[i].uses.iter().map(|(v, s)| format!("{s} [{v}]")).collect();
                let seeds: Vec<String> = p["seeds"].as_array().into_iter().flatten().map(|s| s.to_string()).collect();
                let time = manifests[i].as_ref().map(|m| human_seconds(m.seconds)).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"key\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&t.fmt(value)),
                    esc(&uses.join(", ")),
                    esc(plan.instances[i].kind.name()),
                    esc(&seeds.join(", ")),
                    esc(&plan.instances[i].key.hex()),
                    esc(&time)
                );
            }
            let _ = writeln!(
                out,
                "</tbody>\n</table>\n<p>Its inputs and parameters: <code>ktlab explain {} --cell {}:{}:{}</code>. <a href=\"#table-{}\">Close</a></p>\n</div>",
                esc(&plan.file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()),
                esc(&t.name),
                esc(row),
                esc(column),
                id(&t.name)
            );
        }
    }
    if let Some(s) = plot {
        let _ = writeln!(out, "<figure class=\"plot\">\n{}\n</figure>", s.trim());
    }
    out.push_str("</section>\n");
}

/// The decisions the file stated, with their numbers and outcomes (as decisions.md).
fn decisions_section(out: &mut String, decided: &[Decided]) {
    out.push_str("<section id=\"decisions\">\n<h2>Decisions</h2>\n<table class=\"results\">\n<thead><tr>");
    for h in super::decision_files::HEADER {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in super::decision_files::table_rows(decided) {
        out.push_str("<tr>");
        let last = row.len().saturating_sub(1);
        for (k, cell) in row.iter().enumerate() {
            let numeric = (6..=10).contains(&k);
            let class = if numeric { " class=\"num\"" } else { "" };
            if k == last && !cell.is_empty() {
                let _ = write!(out, "<td><strong>{}</strong></td>", esc(cell));
            } else {
                let _ = write!(out, "<td{class}>{}</td>", esc(cell));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    let _ = writeln!(out, "<p class=\"note\">{}</p>", esc(super::decision_files::EXPLANATION));
    let notes = super::decision_files::notes(decided);
    if !notes.is_empty() {
        out.push_str("<ul>\n");
        for n in notes {
            let _ = writeln!(out, "<li>{}</li>", esc(&n));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

/// Every instance: the stages it serves, kind, key, when it started, how long it took, where.
fn stages_section(out: &mut String, plan: &Plan, manifests: &[Option<crate::store::Manifest>]) {
    out.push_str("<section id=\"stages\">\n<h2>Stage instances</h2>\n<p>What each took, from the store's manifests.</p>\n<table>\n<thead><tr><th>stage [variant]</th><th>kind</th><th>key</th><th>started</th><th>time</th><th>host</th></tr></thead>\n<tbody>\n");
    for (inst, m) in plan.instances.iter().zip(manifests) {
        let uses: Vec<String> = inst.uses.iter().map(|(v, s)| format!("{s} [{v}]")).collect();
        let (started, time, host) = match m {
            Some(m) => (
                m.started.parse::<f64>().map(date).unwrap_or_default(),
                human_seconds(m.seconds),
                m.host.clone(),
            ),
            None => Default::default(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"key\" title=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&uses.join(", ")),
            esc(inst.kind.name()),
            esc(&inst.key.hex()),
            esc(&inst.key.short()),
            esc(&started),
            esc(&time),
            esc(&host)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_ids_are_plain() {
        assert_eq!(esc("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
        assert_eq!(cell_id("linear probe", 2, 3), "cell-linear-probe-2-3");
    }
}
