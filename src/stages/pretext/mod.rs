//! `pretext`: trains a network on a self-supervised task over the images of a dataset split.
//! The entry is a model stage: `features` reads its backbone's layers on whole images,
//! `train` may start from it, `linear-probe` scores it.
//!
//! A task is one file in this folder (its options and their validation, its keyed form, how
//! it trains and measures itself) and one line in [`TASKS`]; `task.rs` says what a task is
//! to this stage.
mod colorization;
mod contrastive;
mod inpainting;
mod jigsaw;
mod rotation;
mod task;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use self::task::{Task, TaskDef, TaskInput};
use super::network_params::NetworkParams;
use super::params::{data_ref, MODEL};
use super::solver::SolverParams;
use super::{InputSpec, Networks, OutputKind, ParamError, Rows, Stage, Upstream};
use crate::config::struct_fields;
use crate::config::{did_you_mean, ConfigError, Node};
use crate::models::Arch;
#[cfg(feature = "torch")]
use {
    self::task::Job,
    super::artefacts,
    super::images::{split_images, Reading},
    super::solver::write_history,
    super::{MetricRow, Outcome, RunCtx, StageError},
    crate::data::{open_split, Fit, Source},
    std::sync::Arc,
};

/// Every pretext task, in the order messages list them: adding one is a file in this
/// folder and a line here.
const TASKS: &[&TaskDef] = &[
    &jigsaw::JIGSAW,
    &jigsaw::JIGSAW_PLUS_PLUS,
    &rotation::ROTATION,
    &contrastive::CONTRASTIVE,
    &colorization::COLORIZATION,
    &inpainting::INPAINTING,
];

/// The keys of a pretext table besides the flattened solver options and the tasks' own.
const COMMON_KEYS: &[&str] = &["task", "arch", "width", "batch_norm", "data", "image_size", "init", "held_out"];

/// Every task's metrics, each once, in the order of [`TASKS`]: the stage's `METRICS`,
/// derived at compile time so that a new task's file names its metrics in one place.
const ALL_METRICS: [&str; METRIC_COUNT] = {
    let mut out = [""; METRIC_COUNT];
    distinct_metrics(TASKS, &mut out);
    out
};

const METRIC_COUNT: usize = distinct_metrics(TASKS, &mut []);

/// Writes the tasks' distinct metric names into `out` (as far as it reaches) and returns
/// how many there are.
const fn distinct_metrics(tasks: &[&TaskDef], out: &mut [&'static str]) -> usize {
    let mut scratch = [""; 64];
    let mut n = 0;
    let mut t = 0;
    while t < tasks.len() {
        let mut m = 0;
        while m < tasks[t].metrics.len() {
            let name = tasks[t].metrics[m];
            let mut seen = false;
            let mut i = 0;
            while i < n {
                seen |= str_eq(scratch[i], name);
                i += 1;
            }
            if !seen {
                scratch[n] = name;
                if n < out.len() {
                    out[n] = name;
                }
                n += 1;
            }
            m += 1;
        }
        t += 1;
    }
    n
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Multiply-accumulates of one training image of a pretext stage with keyed parameters
/// `params` on the network `cfg` (its task's [`TaskDef::sample_macs`]); `None` for an
/// unknown task or what its task cannot tell.
pub fn sample_macs(params: &Value, cfg: &crate::models::NetConfig) -> Option<f64> {
    let task = params.get("task")?.as_str()?;
    let def = TASKS.iter().find(|d| d.name == task)?;
    (def.sample_macs)(params, cfg)
}

/// Every key a pretext table may hold besides the solver options: the stage's own and
/// every task's.
pub(crate) fn own_keys() -> Vec<&'static str> {
    let mut keys = COMMON_KEYS.to_vec();
    for def in TASKS {
        keys.extend(def.keys.iter().filter(|k| !keys.contains(k)).collect::<Vec<_>>());
    }
    keys
}

/// A pretext table's keys that are not the task's (`task` itself is read by [`find_task`]):
/// the file as it writes them.
#[derive(Clone, Debug, Deserialize)]
struct PretextFile {
    arch: Arch,
    #[serde(default = "one")]
    width: f64,
    #[serde(default = "yes")]
    batch_norm: bool,
    data: String,
    image_size: Option<usize>,
    init: Option<String>,
    held_out: Option<f64>,
    #[serde(flatten)]
    solver: SolverParams,
}

/// Share of the split's images set aside to measure the pretext task on.
const HELD_OUT: f64 = 0.1;

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// A validated pretext stage: every value resolved, nothing left to default at run time.
#[derive(Clone, Debug)]
pub struct PretextParams {
    pub arch: Arch,
    pub width: f64,
    pub batch_norm: bool,
    /// `dataset:split` of the (unlabeled) images.
    pub data: String,
    /// The task and its own options (the side images are loaded at among them).
    task: Box<dyn Task>,
    pub solver: SolverParams,
    /// A model stage whose matching weights this network starts from (a curriculum:
    /// Jigsaw++ with 100 permutations from one with 10).
    pub init: Option<String>,
    /// Share of the images (drawn by the seed) the network never trains on; the task's
    /// accuracy on them is `pretext_heldout_accuracy` (0.1; 0: none, and no such metric).
    pub held_out: f64,
}

/// The keyed form: the file's keys with every default filled in (as keys have been
/// since pretext stages exist, so that stored entries stay valid), the task's beside them.
#[derive(Serialize)]
struct PretextKey<'a> {
    task: &'static str,
    arch: Arch,
    width: f64,
    batch_norm: bool,
    data: &'a str,
    image_size: usize,
    #[serde(flatten)]
    own: Map<String, Value>,
    #[serde(flatten)]
    solver: &'a SolverParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    init: Option<&'a str>,
    held_out: f64,
}

impl Serialize for PretextParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PretextKey {
            task: self.task.def().name,
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            data: &self.data,
            image_size: self.task.image_size(),
            own: self.task.key_fields(),
            solver: &self.solver,
            init: self.init.as_deref(),
            held_out: self.held_out,
        }
        .serialize(s)
    }
}

/// The task `task = "..."` names, or the message listing them (and the nearest).
fn find_task(table: &Node, prefix: &str) -> Result<&'static TaskDef, ConfigError> {
    let Some(node) = table.lookup("task") else {
        return Err(table.error(prefix, "missing required key `task`"));
    };
    let key = format!("{prefix}.task");
    let name = node
        .as_str()
        .ok_or_else(|| node.error(&key, format!("expected a string, found {}", node.type_name())))?;
    if let Some(def) = TASKS.iter().find(|d| d.name == name) {
        return Ok(def);
    }
    let shown: String = name.chars().take(60).flat_map(char::escape_debug).collect();
    let names: Vec<String> = TASKS.iter().map(|d| format!("`{}`", d.name)).collect();
    let mut message = format!("unknown pretext task `{shown}`, expected one of {}", names.join(", "));
    if let Some(hint) = did_you_mean(name, TASKS.iter().map(|d| d.name)) {
        message.push_str("; ");
        message.push_str(&hint);
    }
    Err(node.error(&key, message))
}

/// Refuses a key of another task, naming the tasks that take it: their family when every
/// task of it does ("jigsaw tasks"), else each by name.
fn refuse_other_tasks_keys(def: &TaskDef, table: &Node, prefix: &str) -> Result<(), ConfigError> {
    for other in TASKS.iter().filter(|d| d.name != def.name) {
        for key in other.keys.iter().filter(|k| !def.keys.contains(k)) {
            let Some(node) = table.lookup(key) else { continue };
            let takers: Vec<&TaskDef> = TASKS.iter().copied().filter(|d| d.keys.contains(key)).collect();
            let family = takers[0].family;
            let whole_family = TASKS.iter().filter(|d| d.family == family).all(|d| d.keys.contains(key));
            let who = if takers.iter().all(|d| d.family == family) && whole_family {
                family.to_string()
            } else {
                takers
                    .iter()
                    .map(|d| format!("task = \"{}\"", d.name))
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            return Err(node.error(
                &format!("{prefix}.{key}"),
                format!("`{key}` applies to {who}, not to task = \"{}\"", def.name),
            ));
        }
    }
    Ok(())
}

impl PretextFile {
    fn validate(self, def: &TaskDef, table: &Node, prefix: &str, known: &[&[&'static str]]) -> Result<PretextParams, ConfigError> {
        let at = |key: &str| table.lookup(key).unwrap_or(table);
        self.solver.validate(table, prefix)?;
        let held_out = self.held_out.unwrap_or(HELD_OUT);
        if !(0.0..=0.5).contains(&held_out) {
            return Err(at("held_out").error(
                &format!("{prefix}.held_out"),
                format!("expected a share of the images in [0, 0.5], found {held_out}"),
            ));
        }
        let task = (def.decode)(&TaskInput {
            table,
            prefix,
            known,
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            image_size: self.image_size,
            batch_size: self.solver.batch_size,
        })?;
        Ok(PretextParams {
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            data: self.data,
            task,
            solver: self.solver,
            init: self.init,
            held_out,
        })
    }
}

impl PretextParams {
    /// The task's name in experiment files.
    pub fn task_name(&self) -> &'static str {
        self.task.def().name
    }

    /// The backbone on whole images at the stage's image side (as features read it).
    fn net_params(&self) -> NetworkParams {
        NetworkParams {
            arch: self.arch,
            width: self.width,
            batch_norm: self.batch_norm,
            image_size: self.task.image_size(),
        }
    }
}

impl Stage for PretextParams {
    const NAME: &'static str = "pretext";
    /// 2 since `vgg16-small` lost its last max-pool; 3 since it holds images out; 4: the
    /// held-out images and generated permutations from the stated seed, one seed derivation (`crate::seed`).
    const VERSION: u32 = 4;
    const OUTPUT: OutputKind = OutputKind::Model;
    /// Every task's (see [`TaskDef::metrics`]), each once.
    const METRICS: &'static [&'static str] = &ALL_METRICS;

    /// The task's; no images held out (`held_out = 0`): none of the held-out ones.
    fn metrics(&self) -> Vec<&'static str> {
        let held_out = self.held_out > 0.0;
        self.task
            .def()
            .metrics
            .iter()
            .copied()
            .filter(|m| held_out || !m.starts_with("pretext_heldout_"))
            .collect()
    }

    fn decode(table: &Node, prefix: &str) -> Result<Self, ConfigError> {
        let def = find_task(table, prefix)?;
        refuse_other_tasks_keys(def, table, prefix)?;
        let own = own_keys();
        let known: &[&[&'static str]] = &[&own, struct_fields::<SolverParams>()];
        table
            .decode_flattened::<PretextFile>(prefix, known)?
            .validate(def, table, prefix, known)
    }
    /// Crops, tiles, permutations, rotations and initial weights are drawn.
    fn stochastic(&self) -> bool {
        true
    }
    fn device_dependent(&self) -> bool {
        true
    }
    fn inputs(&self) -> Vec<InputSpec> {
        let mut v = vec![data_ref("data", &self.data)];
        if let Some(init) = &self.init {
            v.push(InputSpec::Stage {
                key: "init",
                stage: init.clone(),
                accepts: MODEL,
            });
        }
        v
    }
    /// The backbone as `features` and probes read it: on whole images.
    fn networks(&self) -> Networks<'_> {
        Networks {
            builds: Some(self.net_params().config()),
            init: self.init.as_deref().map(|s| ("init", s)),
            reads: None,
        }
    }
    fn rows(&self) -> Rows<'_> {
        Rows::None
    }
    fn resolve(&mut self, _: &dyn Upstream) -> Result<(), ParamError> {
        Ok(())
    }
    #[cfg(feature = "torch")]
    fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
        let (spec, split) = ctx.data_input("data")?;
        let source: Arc<dyn Source> = Arc::from(open_split(spec, split)?);
        let reading = if self.task.reads_originals() {
            Reading::Originals
        } else {
            Reading::Whole(Fit::Squash)
        };
        let all = split_images(ctx, "data", source, self.task.image_size(), reading)?;
        let held = held_out_count(all.n, self.held_out);
        // The same images for every stage on this split with this stated seed (nested by
        // share): a stage started from another's model never saw the images it holds out.
        let held_seed = crate::seed::held_out(ctx.stated_seed, ctx.data_fingerprint("data")?);
        let (set, aside) = all.hold_out(held, held_seed);
        let heldout_indices = crate::train::batches::held_out_indices(all.n, held, held_seed);
        drop(all);
        if set.n == 0 {
            return Err(StageError::Input(format!("`{}` has no images left to train on", self.data)));
        }
        let images = set.n;
        let job = Job {
            ctx,
            net: self.net_params(),
            set: Arc::new(set),
            aside: Arc::new(aside),
            cfg: self.solver.config(ctx.seed),
            eval_seed: crate::seed::stream(held_seed, "held-out samples"),
            init: self.init.is_some(),
        };
        let trained = self.task.train(&job)?;
        let (history, metric, heldout, aside) = (trained.history, trained.metric, trained.heldout, job.aside.n);
        write_history(ctx, &history, metric)?;
        let last = history.last().map(|h| (h.loss, h.metric)).unwrap_or((f64::NAN, 0.0));
        let key = metric.key;
        // A classification task's classes after its name, as pretext.json has had them.
        let mut summary = Map::new();
        summary.insert("task".into(), self.task_name().into());
        if let Some(classes) = trained.classes {
            summary.insert("classes".into(), classes.into());
        }
        // The task's metric names: (held-out, training, the baseline's if reported). The
        // baseline is guessing (`..._chance`) or a fixed prediction (`..._trivial`).
        let names = self.task.def().metrics;
        let baseline_word = match names.get(2) {
            Some(name) if name.ends_with("_trivial") => "trivial",
            _ => "chance",
        };
        if let Some(value) = trained.baseline {
            summary.insert(baseline_word.into(), value.into());
        }
        for (field, value) in [
            ("final_loss".into(), last.0.into()),
            (format!("final_{key}"), last.1.into()),
            ("epochs".into(), history.len().into()),
            ("train_images".into(), images.into()),
            ("heldout_images".into(), aside.into()),
            (format!("heldout_{key}"), heldout.into()),
            // Positions in the split (its listing order): the same for every stage on this
            // split with this seed, nested by share.
            ("heldout_indices".into(), heldout_indices.into()),
        ] {
            summary.insert(field, value);
        }
        let summary = Value::Object(summary);
        artefacts::write_json(&ctx.path("pretext.json"), &summary)?;
        let row = |metric: &str, value: f64| MetricRow {
            layer: String::new(),
            metric: metric.into(),
            value,
        };
        let (heldout_name, train_name) = (names[0], names[1]);
        let name = key.replace('_', " ");
        let mut metrics = vec![row(train_name, last.1)];
        let mut measured = format!("training {name} {:.3}", last.1);
        if let Some(value) = heldout {
            metrics.insert(0, row(heldout_name, value));
            if let (Some(baseline_name), Some(value)) = (names.get(2), trained.baseline) {
                metrics.push(row(baseline_name, value));
            }
            for (name, value) in &trained.extra {
                metrics.push(row(name, *value));
            }
            measured = format!("held-out {name} {value:.3} on {aside} images, {measured}");
        }
        let baseline = match trained.baseline {
            Some(value) if baseline_word == "trivial" => format!(" (trivial prediction {value:.4})"),
            Some(value) => format!(" (chance {value:.4})"),
            None => String::new(),
        };
        Ok(Outcome {
            metrics,
            summary: format!(
                "{} on {} images, {} epochs: {measured}{baseline}, loss {:.4}",
                self.task_name(),
                images,
                history.len(),
                last.0
            ),
        })
    }
}

#[cfg(feature = "torch")]
/// Images set aside: `share` of `n`, at least one when the share is not zero and there
/// are two images or more.
fn held_out_count(n: usize, share: f64) -> usize {
    if share <= 0.0 || n < 2 {
        return 0;
    }
    ((n as f64 * share).round() as usize).clamp(1, n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list of tasks: one entry per name, no task's key shadowing a stage key, and
    /// every task decodable from a table that names it with the stage's keys only.
    #[test]
    fn every_listed_task_decodes_under_its_own_name() {
        let mut names: Vec<&str> = TASKS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TASKS.len(), "two tasks share a name");
        for def in TASKS {
            assert!(def.keys.iter().all(|k| !COMMON_KEYS.contains(k)), "{}", def.name);
            let file = std::sync::Arc::new(crate::config::SourceFile {
                path: "t.toml".into(),
                text: format!("task = \"{}\"\narch = \"alexnet-small\"\ndata = \"d:s\"", def.name),
            });
            let node = Node::parse(file).unwrap();
            let params = PretextParams::decode(&node, "stages.s").unwrap_or_else(|e| panic!("{}: {e}", def.name));
            assert_eq!(params.task_name(), def.name);
            let key = serde_json::to_value(&params).unwrap();
            for own in params.task.key_fields().keys() {
                assert!(key.get(own).is_some(), "{}: `{own}` is not in the key", def.name);
            }
            // Held-out metric, then training metric (the stage reads them so), all listed.
            let metrics = params.task.def().metrics;
            assert!(metrics.len() >= 2, "{}", def.name);
            assert!(metrics[0].starts_with("pretext_heldout_") && metrics[1].starts_with("pretext_train_"));
            assert!(metrics.iter().all(|m| PretextParams::METRICS.contains(m)), "{}", def.name);
        }
        // The stage's list is the tasks' lists, each name once, in the order of TASKS.
        let mut union: Vec<&str> = Vec::new();
        for m in TASKS.iter().flat_map(|d| d.metrics) {
            if !union.contains(m) {
                union.push(m);
            }
        }
        assert_eq!(PretextParams::METRICS, union.as_slice());
    }
}
