//! The decision rules an experiment states before it runs (`[[decisions]]`), validated
//! against its stages: which stage values are compared, at which layers, against which
//! thresholds, and which earlier decisions they depend on.
use indexmap::IndexMap;

use crate::config::{check_name, did_you_mean, RawDecision, RawLayers};

use super::table::{TableStage, NO_LAYER};
use super::PlanError;

/// The cells a decision compares.
#[derive(Clone, Debug, PartialEq)]
pub enum DecisionLayers {
    /// The metric has no layer (a clustering's NMI, a classifier's own top-1).
    None,
    /// The same layers on both sides (`layers = ["conv4", "conv5"]`).
    Listed(Vec<String>),
    /// `layers = "best"`: per side, the layer where its selecting stage's metric has the
    /// highest mean over the seeds, among that stage's layers (in their order: the first
    /// wins a tie).
    Best { a: Selector, b: Option<Selector> },
}

/// The stage whose values pick one side's layer, and the layers it chooses among.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub stage: String,
    pub layers: Vec<String>,
}

/// One validated `[[decisions]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionSpec {
    pub name: String,
    pub claim: String,
    pub metric: String,
    pub a: String,
    /// Without it, the quantity is `a`'s value itself.
    pub b: Option<String>,
    pub layers: DecisionLayers,
    /// "pass" when the mean quantity is at least this at every layer compared.
    pub pass: f64,
    /// "fail" when at most this at every layer (else "inconclusive"); without it, what does
    /// not pass fails.
    pub fail: Option<f64>,
    /// Earlier decisions that must have passed for this one to be tested.
    pub requires: Vec<String>,
    /// Earlier decisions that must pass too for this one to pass.
    pub also: Vec<String>,
}

impl DecisionSpec {
    /// The stages whose values the decision reads: a, b and the selecting stages, each once.
    pub fn stages(&self) -> Vec<&str> {
        let mut out: Vec<&str> = vec![self.a.as_str()];
        out.extend(self.b.as_deref());
        if let DecisionLayers::Best { a, b } = &self.layers {
            out.push(&a.stage);
            out.extend(b.as_ref().map(|s| s.stage.as_str()));
        }
        let mut seen = Vec::new();
        out.retain(|s| {
            let new = !seen.contains(s);
            seen.push(*s);
            new
        });
        out
    }
}

/// Checks every `[[decisions]]` entry against the stages (by name, with what they report
/// and the layers they probe); `varying` names the stages with several instances for one
/// seed (they vary with a swept key: a decision compares one value per seed). All errors
/// at once, each at its file, line and key.
pub fn validate_decisions(
    raw: &[RawDecision],
    stages: &IndexMap<String, TableStage>,
    varying: &[String],
) -> Result<Vec<DecisionSpec>, PlanError> {
    let mut errors = super::error::Errors::default();
    let mut out = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let before = errors.len();
        if let Err(m) = check_name(&d.name) {
            errors.push(d.error("name", m, None));
        } else if let Some(j) = raw[..i].iter().position(|e| e.name == d.name) {
            errors.push(d.error(
                "name",
                format!("a decision named `{}` is defined twice (first as `decisions[{j}]`)", d.name),
                None,
            ));
        }
        if d.claim.trim().is_empty() {
            errors.push(d.error("claim", "expected the claim the decision tests, in words", None));
        }
        // The stages compared, each reporting the metric, one value per seed.
        let a = side(d, stages, varying, &mut errors, "a", &d.a);
        let b = d.b.as_ref().and_then(|b| side(d, stages, varying, &mut errors, "b", b));
        // Selecting stages (only with `layers = "best"`).
        let best = d.layers == Some(RawLayers::Best);
        let mut select = (None, None);
        if let Some(sel) = &d.select {
            if !best {
                errors.push(d.error(
                    "select",
                    "`select` picks each side's best layer: it needs `layers = \"best\"`",
                    None,
                ));
            } else {
                if let (Some(_), None) = (&sel.b, &d.b) {
                    errors.push(d.error("select.b", "`select.b` without `b`: there is no side b to select for", None));
                }
                if sel.a.is_none() && sel.b.is_none() {
                    errors.push(d.error("select", "expected `a`, `b` or both", None));
                }
                select.0 = sel
                    .a
                    .as_ref()
                    .map(|s| (side(d, stages, varying, &mut errors, "select.a", s), s.clone()));
                select.1 = sel
                    .b
                    .as_ref()
                    .filter(|_| d.b.is_some())
                    .map(|s| (side(d, stages, varying, &mut errors, "select.b", s), s.clone()));
            }
        }
        // Layers: where the stages have them, which ones.
        let layered = |s: &TableStage| s.layers.iter().any(|l| l != NO_LAYER);
        let mut layers = None;
        let sides: Vec<(&str, &str, Option<&TableStage>)> = [("a", d.a.as_str(), a.as_ref())]
            .into_iter()
            .chain(d.b.as_deref().map(|n| ("b", n, b.as_ref())))
            .collect();
        match &d.layers {
            None => {
                for (key, name, s) in &sides {
                    if let Some(s) = s.filter(|s| layered(s)) {
                        errors.push(d.error(
                            key,
                            format!(
                                "stage `{name}` reports `{}` per layer ({}): say which in `layers` (a list, or \"best\")",
                                d.metric,
                                s.layers.join(", ")
                            ),
                            None,
                        ));
                    }
                }
                layers = Some(DecisionLayers::None);
            }
            Some(RawLayers::Listed(listed)) => {
                if listed.is_empty() {
                    errors.push(d.error(
                        "layers",
                        "expected at least one layer (or no `layers` for a metric without one)",
                        None,
                    ));
                }
                for (j, l) in listed.iter().enumerate() {
                    if listed[..j].contains(l) {
                        errors.push(d.error("layers", format!("layer `{l}` is listed twice"), None));
                    }
                }
                for (_, name, s) in &sides {
                    let Some(s) = s else { continue };
                    if !layered(s) {
                        errors.push(d.error(
                            "layers",
                            format!("stage `{name}` reports `{}` without a layer: omit `layers`", d.metric),
                            None,
                        ));
                        continue;
                    }
                    for l in listed {
                        if !s.layers.contains(l) {
                            let hint = did_you_mean(l, s.layers.iter().map(String::as_str))
                                .or_else(|| Some(format!("`{name}` probes: {}", s.layers.join(", "))));
                            errors.push(d.error("layers", format!("stage `{name}` does not probe the layer `{l}`"), hint));
                        }
                    }
                }
                layers = Some(DecisionLayers::Listed(listed.clone()));
            }
            Some(RawLayers::Best) => {
                // Per side: its selecting stage (its own by default), whose layers the
                // side's stage must all probe.
                let mut pick = |key: &str, name: &str, s: Option<&TableStage>, chosen: Option<(Option<TableStage>, String)>| {
                    let (sel_key, sel_name, sel) = match chosen {
                        Some((sel, sel_name)) => (format!("select.{key}"), sel_name, sel),
                        None => (key.to_string(), name.to_string(), s.cloned()),
                    };
                    let (s, sel) = (s?, sel?);
                    if !layered(&sel) {
                        errors.push(d.error(
                            &sel_key,
                            format!("stage `{sel_name}` reports `{}` without a layer: it has no best layer", d.metric),
                            None,
                        ));
                        return None;
                    }
                    for l in &sel.layers {
                        if !s.layers.contains(l) {
                            errors.push(d.error(
                                &sel_key,
                                format!("stage `{sel_name}` probes the layer `{l}`, which `{key}` (`{name}`) does not"),
                                Some(format!("`{name}` probes: {}", s.layers.join(", "))),
                            ));
                            return None;
                        }
                    }
                    Some(Selector {
                        stage: sel_name,
                        layers: sel.layers.clone(),
                    })
                };
                let sa = pick("a", &d.a, a.as_ref(), select.0.take());
                let sb = match &d.b {
                    Some(bn) => pick("b", bn, b.as_ref(), select.1.take()).map(Some),
                    None => Some(None),
                };
                if let (Some(a), Some(b)) = (sa, sb) {
                    layers = Some(DecisionLayers::Best { a, b });
                }
            }
        }
        // Thresholds.
        if !d.pass.is_finite() {
            errors.push(d.error("pass", "expected a finite number", None));
        }
        if let Some(f) = d.fail {
            if !f.is_finite() {
                errors.push(d.error("fail", "expected a finite number", None));
            } else if d.pass.is_finite() && f > d.pass {
                errors.push(d.error(
                    "fail",
                    format!("`fail` ({f}) is above `pass` ({}): a quantity could both pass and fail", d.pass),
                    None,
                ));
            }
        }
        // Decisions it depends on: earlier ones only.
        for key in ["requires", "also"] {
            let names = if key == "requires" { &d.requires } else { &d.also };
            for (j, n) in names.iter().enumerate() {
                if raw[..i].iter().any(|e| &e.name == n) {
                    if names[..j].contains(n) {
                        errors.push(d.error(key, format!("`{n}` is listed twice"), None));
                    }
                } else if n == &d.name {
                    errors.push(d.error(key, format!("decision `{n}` names itself"), None));
                } else if raw[i + 1..].iter().any(|e| &e.name == n) {
                    errors.push(d.error(
                        key,
                        format!(
                            "decision `{n}` comes after `{}`: a decision may only depend on the decisions listed before it",
                            d.name
                        ),
                        None,
                    ));
                } else {
                    let hint = did_you_mean(n, raw[..i].iter().map(|e| e.name.as_str()));
                    errors.push(d.error(key, format!("no decision named `{n}` before `{}`", d.name), hint));
                }
            }
        }
        if errors.len() == before {
            if let Some(layers) = layers {
                out.push(DecisionSpec {
                    name: d.name.clone(),
                    claim: d.claim.clone(),
                    metric: d.metric.clone(),
                    a: d.a.clone(),
                    b: d.b.clone(),
                    layers,
                    pass: d.pass,
                    fail: d.fail,
                    requires: d.requires.clone(),
                    also: d.also.clone(),
                });
            }
        }
    }
    errors.finish()?;
    Ok(out)
}

/// The stage a decision names at `key`: it exists, reports the metric and has one instance
/// per seed; else the error is recorded and `None` returned.
fn side(
    d: &RawDecision,
    stages: &IndexMap<String, TableStage>,
    varying: &[String],
    errors: &mut super::error::Errors,
    key: &str,
    stage: &str,
) -> Option<TableStage> {
    let Some(s) = stages.get(stage) else {
        let hint = did_you_mean(stage, stages.keys().map(String::as_str));
        errors.push(d.error(key, format!("no stage named `{stage}`"), hint));
        return None;
    };
    if !s.metrics.contains(&d.metric.as_str()) {
        let could = s.kind.metrics().contains(&d.metric.as_str());
        let hint = if could {
            None
        } else {
            did_you_mean(&d.metric, s.metrics.iter().copied()).or_else(|| {
                Some(if s.metrics.is_empty() {
                    format!("a {} stage reports no metric", s.kind.name())
                } else {
                    format!("`{stage}` reports: {}", s.metrics.join(", "))
                })
            })
        };
        let with = if could { " with its parameters" } else { "" };
        errors.push(d.error(
            key,
            format!("stage `{stage}` does not report the metric `{}`{with}", d.metric),
            hint,
        ));
        return None;
    }
    if varying.iter().any(|v| v == stage) {
        errors.push(d.error(
            key,
            format!(
                "stage `{stage}` has several instances for one seed (it varies with a swept key): a decision compares one value per seed"
            ),
            None,
        ));
        return None;
    }
    Some(s.clone())
}
