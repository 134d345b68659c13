//! Held-out images stay unseen: a pretext stage that holds images of a split out must not
//! start from a model that trained on them (its held-out accuracy would be measured on
//! images its weights have seen). The images held out depend only on the split, the share
//! and the stated seed (`crate::seed::held_out`, nested by share), so a model trained on the
//! same split is safe exactly when it was a pretext stage with the same seed holding out at
//! least the same share.
use indexmap::IndexMap;

use crate::config::RawStage;
use crate::stages::{ParamError, Params, StageKind};

/// Every stage of a variant by name: its kind, parameters and table (planning's view).
pub(super) type Decoded<'a> = IndexMap<String, (StageKind, Params, &'a RawStage)>;

/// The images a model stage trained on, as planning knows them.
enum Trained<'a> {
    /// A split, less the share held out with the stated seed (pretext stages).
    SplitBut { split: &'a str, share: f64, seed: u64 },
    /// All of a split (as far as planning knows: `train`, `finetune`).
    Split(&'a str),
}

/// What `stage` trained on, and the stage its backbone started from.
fn trained<'a>(decoded: &'a Decoded, stage: &str, experiment_seed: u64) -> Option<(Option<Trained<'a>>, Option<&'a str>)> {
    let (_, params, st) = decoded.get(stage)?;
    let seed = st.seed.as_ref().map_or(experiment_seed, |(s, _)| *s);
    let init = params.networks().init.map(|(_, s)| s);
    let what = match params {
        Params::Pretext(p) => Some(Trained::SplitBut {
            split: &p.data,
            share: p.held_out,
            seed,
        }),
        Params::Train(t) => t.data.as_deref().map(Trained::Split),
        Params::Finetune(f) => Some(Trained::Split(&f.train)),
        _ => None,
    };
    Some((what, init))
}

/// Refuses a pretext stage holding out images that a model of its `init` chain trained on.
pub(super) fn check_held_out(decoded: &Decoded, name: &str, experiment_seed: u64) -> Option<ParamError> {
    let (_, Params::Pretext(p), st) = decoded.get(name)? else {
        return None;
    };
    if p.held_out <= 0.0 {
        return None;
    }
    let seed = st.seed.as_ref().map_or(experiment_seed, |(s, _)| *s);
    let mut cur = p.init.as_deref();
    // Bounded: cycles were refused already, but a bad graph must not loop here.
    for _ in 0..=decoded.len() {
        let stage = cur?;
        let (what, init) = trained(decoded, stage, experiment_seed)?;
        let saw = match what {
            Some(Trained::SplitBut {
                split,
                share,
                seed: theirs,
            }) if split == p.data => (theirs != seed || share < p.held_out).then(|| {
                if theirs != seed {
                    format!("with seed {theirs} (this stage has seed {seed}), so it held out other images")
                } else {
                    format!("holding out only {share} of it (this stage holds out {})", p.held_out)
                }
            }),
            Some(Trained::Split(split)) if split == p.data => Some("on all of it".to_string()),
            _ => None,
        };
        if let Some(how) = saw {
            let via = if Some(stage) == p.init.as_deref() {
                String::new()
            } else {
                format!(" (through `init` = `{}`)", p.init.as_deref().unwrap_or_default())
            };
            return Some(ParamError::new(
                "init",
                format!(
                    "`{stage}`{via} trained on `{}` {how}: this stage's held-out accuracy would be measured on images its \
                     model has seen. Give both stages the same seed and this one a `held_out` of at most the other's, or \
                     set `held_out = 0`",
                    p.data
                ),
            ));
        }
        cur = init;
    }
    None
}
