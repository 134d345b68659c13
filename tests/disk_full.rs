//! Disk full: a stage that hits ENOSPC fails with a clear message (exit 1) and leaves no
//! entry and no work folder. The store lives on a 1 MiB tmpfs; where mounting is not
//! allowed (no root, a restricted container) the test says so and skips.
use std::process::Command;

use crate::common::Project;

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn enospc_fails_the_stage_and_leaves_no_entry() {
    let p = Project::new();
    let store = p.path("store");
    std::fs::create_dir_all(&store).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&store)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED enospc_fails_the_stage_and_leaves_no_entry: cannot mount a tmpfs here (needs root); see README, Reliability");
        return;
    }
    let _mount = Mount(store.clone());
    p.write(
        "datasets.toml",
        "[many]\nformat = \"synthetic\"\nimage_size = 16\nsplits = { small = 50, large = 3000 }\n",
    );
    // 3000 x 768 float32 = 9 MB of features: more than the store holds.
    p.write(
        "exp.toml",
        "name = \"full\"\n[stages.tiny]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"many:small\"\n[stages.big]\nkind = \"features\"\nmodel = \"pixels\"\nsize = 16\ndata = \"many:large\"\n",
    );
    let r = p.ktlab(&["run", "exp.toml"]).fails(1);
    r.stderr_has("1 stage(s) failed");
    r.stderr_has("big: ");
    r.stderr_has("No space left on device");
    // The small stage published; the big one left nothing behind.
    assert_eq!(p.entries().len(), 1, "{:?}", p.entries());
    let (problems, _) = crate::soak::verify_store(&store);
    assert!(problems.is_empty(), "{problems:?}");
    let leftovers: Vec<_> = std::fs::read_dir(store.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "work folders left: {leftovers:?}");
    // With room again, the same run completes.
    drop(_mount);
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    assert_eq!(p.entries().len(), 2);
}
