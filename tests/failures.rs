//! A stage that fails at run time stops its dependents only; the others go on, all
//! failures are listed, and the exit code says whose fault it was (2 input, 1 run time).
use crate::common::Project;

fn write_png(p: &Project, rel: &str, size: u32, shade: u8) {
    let img = image::RgbImage::from_pixel(size, size, image::Rgb([shade, 255 - shade, 90]));
    let path = p.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(&path).unwrap();
}

#[test]
fn bad_image_fails_its_chain_and_the_rest_completes() {
    let p = Project::new();
    for (class, shade) in [("a", 10u8), ("b", 200)] {
        for i in 0..6 {
            write_png(&p, &format!("folder/train/{class}/{i}.png"), 16, shade + i as u8);
        }
    }
    std::fs::write(p.path("folder/train/b/broken.png"), b"this is not a png").unwrap();
    p.write(
        "datasets.toml",
        &format!(
            "{}\n[mine]\nformat = \"image-folder\"\nroot = \"folder\"\n",
            crate::common::DATASETS
        ),
    );
    p.write(
        "exp.toml",
        r#"name = "mixed"
[stages.bad]
kind = "features"
model = "pixels"
data = "mine:train"
[stages.bad_clusters]
kind = "kmeans"
features = "bad"
k = 2
[stages.good]
kind = "features"
model = "pixels"
data = "shapes:test"
[stages.good_clusters]
kind = "kmeans"
features = "good"
k = 3
"#,
    );
    let r = p.ktlab(&["run", "exp.toml"]).fails(2);
    r.stderr_has("broken.png");
    r.stderr_has("1 stage(s) failed");
    r.stderr_has("bad_clusters: not run (an input failed)");
    let e = p.entries();
    assert_eq!(e.iter().filter(|x| x.starts_with("features/")).count(), 1, "{e:?}");
    assert_eq!(e.iter().filter(|x| x.starts_with("kmeans/")).count(), 1, "{e:?}");
    // `datasets --check` names the bad file too.
    let r = p.ktlab(&["datasets", "--check"]).fails(2);
    assert!(r.stdout.contains("broken.png"), "{}", r.stdout);
    assert!(r.stdout.contains("shapes (synthetic)"), "{}", r.stdout);
    // Fixing the file: only the failed chain runs.
    std::fs::remove_file(p.path("folder/train/b/broken.png")).unwrap();
    let r = p.ktlab(&["run", "exp.toml"]).ok();
    assert!(r.stdout.contains("2 computed, 2 cached"), "{}", r.stdout);
}

#[test]
fn k_larger_than_the_data_is_an_input_error() {
    let p = Project::new();
    p.write("datasets.toml", "[tiny]\nformat = \"synthetic\"\nsplits = { train = 10 }\n");
    p.write("exp.toml", "name = \"k\"\n[stages.f]\nkind = \"features\"\nmodel = \"pixels\"\ndata = \"tiny:train\"\n[stages.c]\nkind = \"kmeans\"\nfeatures = \"f\"\nk = 20\n");
    let r = p.ktlab(&["run", "exp.toml"]).fails(2);
    r.stderr_has("k = 20 is larger than the number of points (10)");
    assert_eq!(p.entries().len(), 1);
}

#[test]
fn perms_command_writes_the_official_layout_and_refuses_the_impossible() {
    let p = Project::new();
    let r = p
        .ktlab(&["perms", "--count", "100", "--min-hamming", "3", "--seed", "4", "--out", "perms.bin"])
        .ok();
    assert!(r.stdout.contains("100 permutations"), "{}", r.stdout);
    let bytes = std::fs::read(p.path("perms.bin")).unwrap();
    assert_eq!(bytes.len(), 8 + 100 * 9 * 4);
    assert_eq!(&bytes[..8], &[100, 0, 0, 0, 9, 0, 0, 0]);
    let r = p
        .ktlab(&["perms", "--count", "1000", "--min-hamming", "9", "--out", "x.bin"])
        .fails(2);
    r.stderr_has("cannot find 1000 permutations");
    assert!(!p.path("x.bin").exists());
}
