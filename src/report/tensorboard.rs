//! `tensorboard.txt` in a results folder: where the TensorBoard event files of its training
//! stages are (one folder per stage instance under the store, written while it trains), as
//! paths relative to the results folder, so that the file names no machine's layout
//! beyond the project's own.
use std::path::{Component, Path, PathBuf};

use crate::plan::{render_table, Plan};
use crate::store::Store;

/// The file's name in the results folder.
pub const TENSORBOARD_LIST: &str = "tensorboard.txt";

/// The list for the instances of `plan` that have event files in `store`, seen from the
/// results folder `results_dir` (both absolute); `None` when none has.
pub fn tensorboard_list(plan: &Plan, store: &Store, results_dir: &Path) -> Option<String> {
    let mut rows = vec![["stage".to_string(), "folder".to_string()]];
    for inst in &plan.instances {
        let dir = store.tensorboard_dir(inst.kind, &inst.key);
        if dir.is_dir() {
            rows.push([inst.label(), relative(results_dir, &dir).display().to_string()]);
        }
    }
    if rows.len() == 1 {
        return None;
    }
    let logdir = relative(results_dir, &store.tensorboard_root());
    Some(format!(
        "TensorBoard event files of the training stages (loss, accuracy and learning rate per\n\
         epoch, the loss every few steps), one folder per stage instance under the store.\n\
         From this folder: tensorboard --logdir {}\n\n{}",
        logdir.display(),
        render_table(&rows)
    ))
}

/// Writes [`TENSORBOARD_LIST`] into `dir` when there is a list; returns its path.
pub fn write_tensorboard_list(plan: &Plan, store: &Store, dir: &Path, results_dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let Some(text) = tensorboard_list(plan, store, results_dir) else {
        return Ok(None);
    };
    let path = dir.join(TENSORBOARD_LIST);
    crate::store::write_atomic(&path, text.as_bytes())?;
    Ok(Some(path))
}

/// `to` as seen from the folder `from` (both absolute): `..` for each component of `from`
/// past their common prefix, then the rest of `to`.
fn relative(from: &Path, to: &Path) -> PathBuf {
    fn normal(p: &Path) -> Vec<Component<'_>> {
        p.components().filter(|c| *c != Component::CurDir).collect()
    }
    let (from, to) = (normal(from), normal(to));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.iter().collect();
    }
    let mut out: PathBuf = from[common..].iter().map(|_| Component::ParentDir).collect();
    out.extend(&to[common..]);
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_results_folder() {
        let r = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).display().to_string();
        assert_eq!(r("/p/results/exp", "/p/.ktlab/store/tensorboard"), "../../.ktlab/store/tensorboard");
        assert_eq!(r("/p/results/exp", "/p/results/exp/x"), "x");
        assert_eq!(r("/p/results/exp", "/p/results/exp"), ".");
        assert_eq!(r("/p/./results/exp", "/scratch/st/tensorboard"), "../../../scratch/st/tensorboard");
    }
}
