//! The experiment's decision rules evaluated from the stored metrics (the rows the tables
//! read): per seed, a's value minus b's at each layer compared, paired by seed; the mean
//! against the thresholds the file stated before the run; the outcome.
use std::collections::HashMap;

use super::{Cell, ResultRow};
use crate::plan::{DecisionLayers, DecisionSpec, Plan, Selector};

/// What a decision concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The mean quantity reached `pass` at every layer compared (and every `also` passed).
    Pass,
    /// It reached `fail` at every layer, or (without `fail`) it did not pass.
    Fail,
    /// Neither.
    Inconclusive,
    /// A decision it `requires` did not pass.
    Untestable,
    /// A value it needs is not in the store.
    Missing,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Untestable => "untestable",
            Outcome::Missing => "missing",
        }
    }
}

/// One side of a comparison: its stage, the layer (empty for a metric without one) and the
/// value of each of its distinct instances there (in seed order; absent ones left out).
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    pub stage: String,
    pub layer: String,
    pub values: Vec<(usize, f64)>,
}

impl Side {
    /// Mean, std and count over its instances.
    pub fn cell(&self) -> Option<Cell> {
        Cell::of(&self.values.iter().map(|(_, v)| *v).collect::<Vec<_>>())
    }
}

/// One comparison of a decision: a layer of `layers`, its best layers, or the value of a
/// metric without a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub a: Side,
    pub b: Option<Side>,
    /// a's value minus b's (a's value without b), one per distinct pair of instances, in
    /// seed order.
    pub quantities: Vec<f64>,
    /// What the store lacks for it (empty when complete).
    pub missing: Vec<String>,
}

impl Comparison {
    /// Mean, std and count of the quantities, when complete.
    pub fn cell(&self) -> Option<Cell> {
        if self.missing.is_empty() {
            Cell::of(&self.quantities)
        } else {
            None
        }
    }

    /// The least and the greatest quantity, when complete.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.cell()?;
        let min = self.quantities.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.quantities.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((min, max))
    }

    /// `conv4`, `conv4 vs conv3` (a's best layer and b's), or empty without layers.
    pub fn layer(&self) -> String {
        match &self.b {
            Some(b) if b.layer != self.a.layer => format!("{} vs {}", self.a.layer, b.layer),
            _ => self.a.layer.clone(),
        }
    }
}

/// How one side's layer was chosen (`layers = "best"`): its selecting stage's mean at each
/// of its layers, and the highest.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// `a` or `b`.
    pub side: &'static str,
    pub stage: String,
    /// Each layer with its mean over the stage's instances (`None`: a value is missing).
    pub means: Vec<(String, Option<f64>)>,
    /// The layer with the highest mean (the first on a tie); `None` when one is missing.
    pub chosen: Option<String>,
    /// The stage's instances, in seed order.
    pub instances: Vec<usize>,
}

/// A decision with its numbers and outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    pub spec: DecisionSpec,
    pub comparisons: Vec<Comparison>,
    pub selections: Vec<Selection>,
    pub outcome: Outcome,
    /// Why, where the numbers alone do not say: the decisions that did not pass, what is
    /// missing.
    pub note: Option<String>,
}

/// Every decision of the plan, in the file's order, from `rows` (the long-form results:
/// [`super::collect_rows`]); values that are not there make their decisions "missing".
pub fn decide(plan: &Plan, rows: &[ResultRow]) -> Vec<Decided> {
    let values = Values::new(plan, rows);
    let mut out: Vec<Decided> = Vec::new();
    for spec in &plan.decisions {
        let d = decide_one(spec, &values, &out);
        out.push(d);
    }
    out
}

/// The stored values by instance, and each stage's instance for each seed.
struct Values<'a> {
    /// The plan's seeds in order (one `None` without the seed axis).
    seeds: Vec<Option<u64>>,
    instance: HashMap<(&'a str, Option<u64>), usize>,
    value: HashMap<(usize, &'a str, &'a str), f64>,
}

impl<'a> Values<'a> {
    fn new(plan: &'a Plan, rows: &'a [ResultRow]) -> Values<'a> {
        let mut seeds = Vec::new();
        let mut instance = HashMap::new();
        for v in &plan.variants {
            if !seeds.contains(&v.seed) {
                seeds.push(v.seed);
            }
            for (stage, &i) in &v.stages {
                instance.entry((stage.as_str(), v.seed)).or_insert(i);
            }
        }
        let value = rows
            .iter()
            .map(|r| ((r.instance, r.metric.as_str(), r.layer.as_str()), r.value))
            .collect();
        Values { seeds, instance, value }
    }

    /// A stage's instances, one per seed (`(seed, instance)`), in seed order.
    fn per_seed(&self, stage: &str) -> Vec<(Option<u64>, usize)> {
        self.seeds
            .iter()
            .filter_map(|&s| self.instance.get(&(stage, s)).map(|&i| (s, i)))
            .collect()
    }

    /// The stored value, when there and finite.
    fn get(&self, instance: usize, metric: &str, layer: &str) -> Option<f64> {
        self.value.get(&(instance, metric, layer)).copied().filter(|v| v.is_finite())
    }
}

/// `` `stage` has no `metric` at conv3 (seed 1) ``: what a missing value is.
fn missing_text(stage: &str, metric: &str, layer: &str, seed: Option<u64>) -> String {
    let at = if layer.is_empty() { String::new() } else { format!(" at {layer}") };
    let seed = seed.map(|s| format!(" (seed {s})")).unwrap_or_default();
    format!("`{stage}` has no `{metric}`{at} in the store{seed}")
}

/// The highest mean of a selecting stage's metric over its layers.
fn select(side: &'static str, sel: &Selector, metric: &str, values: &Values, missing: &mut Vec<String>) -> Selection {
    let per_seed = values.per_seed(&sel.stage);
    let mut instances: Vec<usize> = Vec::new();
    for &(_, i) in &per_seed {
        if !instances.contains(&i) {
            instances.push(i);
        }
    }
    let mut means = Vec::new();
    for layer in &sel.layers {
        let mut vals = Vec::new();
        let mut complete = true;
        for &i in &instances {
            match values.get(i, metric, layer) {
                Some(v) => vals.push(v),
                None => {
                    complete = false;
                    let seed = per_seed.iter().find(|(_, j)| *j == i).and_then(|(s, _)| *s);
                    missing.push(missing_text(&sel.stage, metric, layer, seed));
                }
            }
        }
        let mean = Cell::of(&vals).filter(|_| complete).map(|c| c.mean);
        means.push((layer.clone(), mean));
    }
    let chosen = if means.iter().all(|(_, m)| m.is_some()) {
        let mut best: Option<(&String, f64)> = None;
        for (l, m) in &means {
            let m = m.unwrap_or(f64::NEG_INFINITY);
            if best.is_none_or(|(_, b)| m > b) {
                best = Some((l, m));
            }
        }
        best.map(|(l, _)| l.clone())
    } else {
        None
    };
    Selection {
        side,
        stage: sel.stage.clone(),
        means,
        chosen,
        instances,
    }
}

/// a at `layer_a` minus b at `layer_b`, paired by seed.
fn compare(spec: &DecisionSpec, layer_a: &str, layer_b: &str, values: &Values) -> Comparison {
    let a_seeds = values.per_seed(&spec.a);
    let b_seeds = spec.b.as_deref().map(|b| values.per_seed(b));
    let mut pairs: Vec<(Option<u64>, usize, Option<usize>)> = Vec::new();
    for &(seed, ia) in &a_seeds {
        let ib = match &b_seeds {
            None => None,
            Some(b) => match b.iter().find(|(s, _)| *s == seed) {
                Some(&(_, i)) => Some(i),
                None => continue,
            },
        };
        if !pairs.iter().any(|(_, x, y)| *x == ia && *y == ib) {
            pairs.push((seed, ia, ib));
        }
    }
    let mut a = Side {
        stage: spec.a.clone(),
        layer: layer_a.to_string(),
        values: Vec::new(),
    };
    let mut b = spec.b.as_ref().map(|stage| Side {
        stage: stage.clone(),
        layer: layer_b.to_string(),
        values: Vec::new(),
    });
    let mut quantities = Vec::new();
    let mut missing = Vec::new();
    // Instances already said to miss their value (one line each).
    let mut absent: Vec<usize> = Vec::new();
    for (seed, ia, ib) in pairs {
        let va = values.get(ia, &spec.metric, layer_a);
        match va {
            Some(v) if !a.values.iter().any(|(i, _)| *i == ia) => a.values.push((ia, v)),
            Some(_) => {}
            None if absent.contains(&ia) => {}
            None => {
                absent.push(ia);
                missing.push(missing_text(&spec.a, &spec.metric, layer_a, seed));
            }
        }
        let vb = match (ib, b.as_mut()) {
            (Some(ib), Some(side)) => {
                let vb = values.get(ib, &spec.metric, layer_b);
                match vb {
                    Some(v) if !side.values.iter().any(|(i, _)| *i == ib) => side.values.push((ib, v)),
                    Some(_) => {}
                    None if absent.contains(&ib) => {}
                    None => {
                        absent.push(ib);
                        missing.push(missing_text(&side.stage, &spec.metric, layer_b, seed));
                    }
                }
                vb.map(Some)
            }
            _ => Some(None),
        };
        if let (Some(va), Some(vb)) = (va, vb) {
            quantities.push(va - vb.unwrap_or(0.0));
        }
    }
    if quantities.is_empty() && missing.is_empty() {
        missing.push(format!("`{}` has no instance", spec.a));
    }
    Comparison { a, b, quantities, missing }
}

fn decide_one(spec: &DecisionSpec, values: &Values, earlier: &[Decided]) -> Decided {
    let mut selections = Vec::new();
    let mut missing = Vec::new();
    let comparisons = match &spec.layers {
        DecisionLayers::None => vec![compare(spec, "", "", values)],
        DecisionLayers::Listed(layers) => layers.iter().map(|l| compare(spec, l, l, values)).collect(),
        DecisionLayers::Best { a, b } => {
            let sa = select("a", a, &spec.metric, values, &mut missing);
            let sb = b.as_ref().map(|b| select("b", b, &spec.metric, values, &mut missing));
            let la = sa.chosen.clone();
            let lb = sb.as_ref().map(|s| s.chosen.clone());
            selections.push(sa);
            selections.extend(sb);
            match (la, lb) {
                (Some(la), None) => vec![compare(spec, &la, "", values)],
                (Some(la), Some(Some(lb))) => vec![compare(spec, &la, &lb, values)],
                // A layer that cannot be chosen: nothing to compare yet.
                _ => vec![Comparison {
                    a: Side {
                        stage: spec.a.clone(),
                        layer: "?".into(),
                        values: Vec::new(),
                    },
                    b: spec.b.as_ref().map(|stage| Side {
                        stage: stage.clone(),
                        layer: "?".into(),
                        values: Vec::new(),
                    }),
                    quantities: Vec::new(),
                    missing: Vec::new(),
                }],
            }
        }
    };
    for c in &comparisons {
        for m in &c.missing {
            if !missing.contains(m) {
                missing.push(m.clone());
            }
        }
    }
    let means: Vec<Option<f64>> = comparisons.iter().map(|c| c.cell().map(|c| c.mean)).collect();
    let own = if !missing.is_empty() || means.iter().any(Option::is_none) {
        Outcome::Missing
    } else if means.iter().flatten().all(|m| *m >= spec.pass) {
        Outcome::Pass
    } else {
        match spec.fail {
            Some(f) if means.iter().flatten().all(|m| *m <= f) => Outcome::Fail,
            Some(_) => Outcome::Inconclusive,
            None => Outcome::Fail,
        }
    };
    let outcome_of = |name: &str| earlier.iter().find(|d| d.spec.name == name).map_or(Outcome::Missing, |d| d.outcome);
    let not_passed = |names: &[String]| -> Vec<(String, Outcome)> {
        names
            .iter()
            .map(|n| (n.clone(), outcome_of(n)))
            .filter(|(_, o)| *o != Outcome::Pass)
            .collect()
    };
    let required = not_passed(&spec.requires);
    let also = not_passed(&spec.also);
    let (outcome, note) = if !required.is_empty() {
        (Outcome::Untestable, Some(format!("{} did not pass", names(&required))))
    } else if own == Outcome::Pass && !also.is_empty() {
        // It passes only with the decisions it names in `also`.
        let outcome = if also.iter().any(|(_, o)| *o == Outcome::Fail) {
            Outcome::Fail
        } else if also.iter().any(|(_, o)| *o == Outcome::Missing) {
            Outcome::Missing
        } else {
            Outcome::Inconclusive
        };
        let each: Vec<String> = also.iter().map(|(n, o)| format!("{n} {}", o.name())).collect();
        (outcome, Some(format!("also needs {} to pass ({})", names(&also), each.join(", "))))
    } else if own == Outcome::Missing {
        const SHOWN: usize = 3;
        let mut text = missing.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
        if missing.len() > SHOWN {
            text.push_str(&format!("; and {} more", missing.len() - SHOWN));
        }
        (own, Some(text))
    } else {
        (own, None)
    };
    Decided {
        spec: spec.clone(),
        comparisons,
        selections,
        outcome,
        note,
    }
}

/// `G1`, `G1 and G2`, `G1, G2 and G3`.
fn names(list: &[(String, Outcome)]) -> String {
    let n: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
    match n.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use indexmap::IndexMap;

    use super::*;
    use crate::plan::Variant;
    use crate::report::{decision_line, decisions_csv, decisions_markdown};

    const SEEDS: [u64; 3] = [0, 1, 2];

    /// Stage, metric, whether it varies with the seed, its instance base and its values
    /// per layer, one per seed.
    #[allow(clippy::type_complexity)]
    const STAGES: &[(&str, &str, bool, usize, &[(&str, [f64; 3])])] = &[
        (
            "x",
            "top1",
            true,
            10,
            &[("conv1", [0.50, 0.52, 0.54]), ("conv3", [0.60, 0.61, 0.65])],
        ),
        ("y", "top1", false, 20, &[("conv1", [0.45; 3]), ("conv3", [0.70; 3])]),
        ("sel", "top1", true, 30, &[("conv1", [0.30; 3]), ("conv3", [0.20; 3])]),
        ("q", "nmi", true, 40, &[("", [0.2, 0.3, 0.4])]),
    ];

    fn instance(base: usize, by_seed: bool, seed: u64) -> usize {
        base + if by_seed { seed as usize } else { 0 }
    }

    fn plan(decisions: Vec<DecisionSpec>) -> (Plan, Vec<ResultRow>) {
        let mut plan = Plan {
            experiment: "decided".into(),
            file: PathBuf::from("decided.toml"),
            swept_keys: Vec::new(),
            seed_axis: true,
            labels: STAGES.iter().map(|s| (s.0.to_string(), s.0.to_string())).collect(),
            tables: Vec::new(),
            decisions,
            variants: Vec::new(),
            instances: Vec::new(),
            slurm: Default::default(),
        };
        let mut rows = Vec::new();
        for seed in SEEDS {
            let mut stages = IndexMap::new();
            for (name, metric, by_seed, base, layers) in STAGES {
                let i = instance(*base, *by_seed, seed);
                stages.insert(name.to_string(), i);
                for (layer, values) in layers.iter() {
                    rows.push(ResultRow {
                        variant: "default".into(),
                        swept: Vec::new(),
                        seed: Some(seed),
                        stage: name.to_string(),
                        instance: i,
                        layer: layer.to_string(),
                        metric: metric.to_string(),
                        value: values[seed as usize],
                    });
                }
            }
            plan.variants.push(Variant {
                name: format!("seed={seed}"),
                group: "default".into(),
                seed: Some(seed),
                swept: Vec::new(),
                stages,
            });
        }
        (plan, rows)
    }

    fn spec(name: &str, a: &str, b: Option<&str>, layers: DecisionLayers, pass: f64, fail: Option<f64>) -> DecisionSpec {
        DecisionSpec {
            name: name.into(),
            claim: format!("claim of {name}"),
            metric: if a == "q" { "nmi" } else { "top1" }.into(),
            a: a.into(),
            b: b.map(String::from),
            layers,
            pass,
            fail,
            requires: Vec::new(),
            also: Vec::new(),
        }
    }

    fn listed(layers: &[&str]) -> DecisionLayers {
        DecisionLayers::Listed(layers.iter().map(|l| l.to_string()).collect())
    }

    fn selector(stage: &str) -> Selector {
        Selector {
            stage: stage.into(),
            layers: vec!["conv1".into(), "conv3".into()],
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Every outcome, from one set of stored values.
    fn decisions() -> Vec<DecisionSpec> {
        let mut untestable = spec("untestable", "q", None, DecisionLayers::None, 0.0, None);
        untestable.requires = vec!["fails".into(), "passes".into()];
        let mut with_also = spec("with_also", "q", None, DecisionLayers::None, 0.25, None);
        with_also.also = vec!["inconclusive".into()];
        let mut also_fails = spec("also_fails", "q", None, DecisionLayers::None, 0.25, None);
        also_fails.also = vec!["passes".into(), "fails".into()];
        vec![
            spec("passes", "x", Some("y"), listed(&["conv1"]), 0.05, None),
            spec("inconclusive", "x", Some("y"), listed(&["conv1", "conv3"]), 0.0, Some(-0.1)),
            spec("fails", "x", Some("y"), listed(&["conv3"]), 0.0, Some(-0.05)),
            spec("no_fail", "x", Some("y"), listed(&["conv1", "conv3"]), 0.0, None),
            untestable,
            spec("alone", "q", None, DecisionLayers::None, 0.25, None),
            with_also,
            also_fails,
            spec(
                "best",
                "x",
                Some("y"),
                DecisionLayers::Best {
                    a: selector("sel"),
                    b: Some(selector("y")),
                },
                0.0,
                Some(-0.1),
            ),
            spec("paired", "x", Some("sel"), listed(&["conv1"]), 0.2, None),
        ]
    }

    fn find<'a>(decided: &'a [Decided], name: &str) -> &'a Decided {
        decided.iter().find(|d| d.spec.name == name).unwrap()
    }

    #[test]
    fn outcomes_follow_the_thresholds_at_every_layer() {
        let (plan, rows) = plan(decisions());
        let decided = decide(&plan, &rows);
        let outcome = |n: &str| find(&decided, n).outcome;
        // conv1: x - y = 0.05, 0.07, 0.09 (y seed-independent, the same in every pair).
        assert_eq!(outcome("passes"), Outcome::Pass);
        // conv1 passes, conv3 (-0.08) neither passes nor reaches -0.1.
        assert_eq!(outcome("inconclusive"), Outcome::Inconclusive);
        assert_eq!(outcome("fails"), Outcome::Fail);
        // Without `fail`, what does not pass at every layer fails.
        assert_eq!(outcome("no_fail"), Outcome::Fail);
        let u = find(&decided, "untestable");
        assert_eq!(u.outcome, Outcome::Untestable);
        assert_eq!(u.note.as_deref(), Some("fails did not pass"));
        assert!(close(u.comparisons[0].cell().unwrap().mean, 0.3), "its numbers are still there");
        assert_eq!(outcome("alone"), Outcome::Pass);
        let w = find(&decided, "with_also");
        assert_eq!(w.outcome, Outcome::Inconclusive);
        assert_eq!(
            w.note.as_deref(),
            Some("also needs inconclusive to pass (inconclusive inconclusive)")
        );
        assert_eq!(outcome("also_fails"), Outcome::Fail);
    }

    #[test]
    fn quantities_are_paired_by_seed_with_their_spread() {
        let (plan, rows) = plan(decisions());
        let decided = decide(&plan, &rows);
        let c = &find(&decided, "passes").comparisons[0];
        // Three pairs (one per seed of x), y's one instance in each.
        assert_eq!(c.quantities.len(), 3);
        for (q, want) in c.quantities.iter().zip([0.05, 0.07, 0.09]) {
            assert!(close(*q, want), "{:?}", c.quantities);
        }
        let cell = c.cell().unwrap();
        assert_eq!(cell.n, 3);
        assert!(close(cell.mean, 0.07) && close(cell.std, 0.02), "{cell:?}");
        let (min, max) = c.range().unwrap();
        assert!(close(min, 0.05) && close(max, 0.09));
        assert_eq!(c.a.values.len(), 3);
        assert_eq!(c.b.as_ref().unwrap().values, vec![(20, 0.45)]);
        // Both sides by seed: seed s of x against seed s of sel, not every combination.
        let p = &find(&decided, "paired").comparisons[0];
        assert_eq!(p.quantities.len(), 3);
        for (q, want) in p.quantities.iter().zip([0.20, 0.22, 0.24]) {
            assert!(close(*q, want), "{:?}", p.quantities);
        }
        // A seed-independent stage alone is one value.
        let one = spec("one", "y", None, listed(&["conv1"]), 0.0, None);
        let (plan, rows) = super::tests::plan(vec![one]);
        let c = &decide(&plan, &rows)[0].comparisons[0];
        assert_eq!(c.quantities, vec![0.45]);
    }

    #[test]
    fn best_layers_are_chosen_per_side_by_their_selecting_stage() {
        let (plan, rows) = plan(decisions());
        let d = find(&decide(&plan, &rows), "best").clone();
        // sel is best at conv1 (0.30 > 0.20) though x itself is better at conv3; y at conv3.
        assert_eq!(d.selections.len(), 2);
        assert_eq!(d.selections[0].chosen.as_deref(), Some("conv1"));
        assert_eq!(d.selections[0].stage, "sel");
        assert_eq!(d.selections[0].instances, vec![30, 31, 32]);
        assert_eq!(d.selections[1].chosen.as_deref(), Some("conv3"));
        let c = &d.comparisons[0];
        assert_eq!(c.layer(), "conv1 vs conv3");
        // x at conv1 minus y at conv3: -0.20, -0.18, -0.16.
        assert!(close(c.cell().unwrap().mean, -0.18));
        assert_eq!(d.outcome, Outcome::Fail);
        assert_eq!(decision_line(&d), "decision best: fail (Δ -0.180 at conv1 vs conv3 ≤ -0.1)");
    }

    #[test]
    fn a_value_missing_from_the_store_makes_the_decision_missing() {
        let (plan, mut rows) = plan(decisions());
        // x's instance of seed 2 has no conv3 value; sel's of seed 1 no conv1.
        let gone = |r: &ResultRow| (r.instance == 12 && r.layer == "conv3") || (r.instance == 31 && r.layer == "conv1");
        rows.retain(|r| !gone(r));
        let decided = decide(&plan, &rows);
        let d = find(&decided, "inconclusive");
        assert_eq!(d.outcome, Outcome::Missing);
        assert_eq!(d.note.as_deref(), Some("`x` has no `top1` at conv3 in the store (seed 2)"));
        assert!(d.comparisons[0].cell().is_some() && d.comparisons[1].cell().is_none());
        assert_eq!(
            decision_line(d),
            "decision inconclusive: missing (`x` has no `top1` at conv3 in the store (seed 2))"
        );
        // Untouched values still decide.
        assert_eq!(find(&decided, "passes").outcome, Outcome::Pass);
        let best = find(&decided, "best");
        assert_eq!(best.outcome, Outcome::Missing);
        assert_eq!(best.selections[0].chosen, None);
        // A decision that requires a missing one is untestable.
        let mut req = spec("req", "q", None, DecisionLayers::None, 0.0, None);
        req.requires = vec!["inconclusive".into()];
        let (mut plan, _) = super::tests::plan(Vec::new());
        plan.decisions = vec![decisions()[1].clone(), req];
        let decided = decide(&plan, &rows);
        assert_eq!(decided[1].outcome, Outcome::Untestable);
        assert_eq!(
            decision_line(&decided[1]),
            "decision req: untestable: inconclusive did not pass (nmi 0.300)"
        );
    }

    #[test]
    fn lines_markdown_and_csv_say_the_same() {
        let (plan, rows) = plan(decisions());
        let decided = decide(&plan, &rows);
        let lines: Vec<String> = decided.iter().map(decision_line).collect();
        assert_eq!(lines[0], "decision passes: pass (Δ +0.070 at conv1 ≥ 0.05)");
        assert_eq!(
            lines[1],
            "decision inconclusive: inconclusive (Δ +0.070 at conv1, -0.080 at conv3; pass needs ≥ 0, fail ≤ -0.1)"
        );
        assert_eq!(lines[2], "decision fails: fail (Δ -0.080 at conv3 ≤ -0.05)");
        assert_eq!(
            lines[3],
            "decision no_fail: fail (Δ +0.070 at conv1, -0.080 at conv3; pass needs ≥ 0)"
        );
        assert_eq!(lines[5], "decision alone: pass (nmi 0.300 ≥ 0.25)");
        assert_eq!(
            lines[7],
            "decision also_fails: fail: also needs fails to pass (fails fail) (nmi 0.300)"
        );

        let md = decisions_markdown("decided", &decided);
        assert!(md.starts_with("# Decisions: decided\n\n| decision | claim | metric | a | b | layer | mean a | mean b | quantity | pass | fail | outcome |\n"), "{md}");
        assert!(
            md.contains("| passes | claim of passes | top1 | x | y | conv1 | 0.520 | 0.450 | +0.070 ± 0.020 (+0.050..+0.090), n=3 | ≥ 0.05 | – | **pass** |\n"),
            "{md}"
        );
        // A second layer of a decision: its own numbers only.
        assert!(
            md.contains("|  |  |  |  |  | conv3 | 0.620 | 0.700 | -0.080 ± 0.026 (-0.100..-0.050), n=3 |  |  |  |\n"),
            "{md}"
        );
        assert!(md.contains("- untestable: untestable: fails did not pass."), "{md}");
        assert!(
            md.contains("- best: a's layer conv1, the highest mean top1 of sel over the seeds (conv1 0.300, conv3 0.200)."),
            "{md}"
        );

        let csv = decisions_csv(&decided).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "decision,claim,metric,a,b,layer_a,layer_b,mean_a,mean_b,mean,std,min,max,n,pass,fail,outcome,note"
        );
        // One row per decision and layer compared.
        let per: usize = decided.iter().map(|d| d.comparisons.len()).sum();
        assert_eq!(lines.len(), 1 + per);
        let f: Vec<&str> = lines[1].split(',').collect();
        assert_eq!(&f[..7], ["passes", "claim of passes", "top1", "x", "y", "conv1", "conv1"]);
        assert!(close(f[9].parse().unwrap(), 0.07) && close(f[10].parse().unwrap(), 0.02));
        assert_eq!(&f[13..], ["3", "0.05", "", "pass", ""]);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("alone,claim of alone,nmi,q,,,,") && l.ends_with(",3,0.25,,pass,")),
            "{csv}"
        );
    }
}
