//! Seeds as an axis and the paper tables: seed-independent stages are shared by every
//! seed, results.csv has a `seed` column, and each `[[tables]]` entry is written as CSV,
//! Markdown and LaTeX with mean ± std over the seeds.
use crate::common::Project;

const SEEDED: &str = r#"
name = "seeded"
seeds = [0, 1, 2]

[stages.feat]
kind = "features"
model = "hog"
data = "shapes:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 8
iterations = 10

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
label = "HOG → k-means"
labels = "labels"
truth = "shapes:train"

[[tables]]
name = "cluster_quality"
metric = "nmi"
rows = "stage"
columns = "stages.clusters.k"
caption = "NMI of HOG clusters"

[[tables.reference]]
row = "HOG → k-means"
column = "4"
value = 0.25
source = "a made-up paper"

[sweep]
"stages.clusters.k" = [4, 16]
"#;

#[test]
fn seeds_share_seed_independent_stages_and_tables_average_over_them() {
    let p = Project::new();
    p.write("exp.toml", SEEDED);
    let plan = p.ktlab(&["plan", "exp.toml"]).ok().stdout;
    // feat (HOG) draws no random numbers: one instance for all 2 x 3 variants; the rest
    // are keyed on the seed and k: 3 x 6.
    assert!(plan.contains("19 stage instances"), "{plan}");
    let feat_keys: std::collections::BTreeSet<&str> = plan
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("feat"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert_eq!(feat_keys.len(), 1, "{plan}");
    assert!(plan.contains("k=16,seed=2"), "{plan}");

    let run = p.ktlab(&["run", "exp.toml"]).ok();
    assert_eq!(p.entries().len(), 19);
    let csv = p.read("results/seeded/results.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "variant,stages.clusters.k,seed,stage,layer,metric,value");
    // 2 values of k x 3 seeds x 4 metrics (nmi, ari, purity, accuracy).
    assert_eq!(lines.len(), 1 + 2 * 3 * 4, "{csv}");
    assert!(lines[1].starts_with("k=4,4,0,quality,,nmi,"), "{csv}");
    assert!(lines[23].starts_with("k=16,16,2,quality,,purity,"), "{csv}");
    assert!(lines[24].starts_with("k=16,16,2,quality,,accuracy,"), "{csv}");

    // The table: mean ± std (sample) over the three seeds of results.csv.
    let nmi = |k: &str| -> Vec<f64> {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("k={k},{k},")) && l.contains(",nmi,"))
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect()
    };
    let table = p.read("results/seeded/cluster_quality.csv");
    let t: Vec<&str> = table.lines().collect();
    assert_eq!(t[0], "stage,k=4_mean,k=4_std,k=4_n,k=4_reference,k=16_mean,k=16_std,k=16_n");
    let cells: Vec<&str> = t[1].split(',').collect();
    assert_eq!(cells[0], "HOG → k-means");
    let v = nmi("4");
    assert_eq!(v.len(), 3);
    let mean = v.iter().sum::<f64>() / 3.0;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((cells[1].parse::<f64>().unwrap() - mean).abs() < 1e-12, "{table}");
    assert!((cells[2].parse::<f64>().unwrap() - std).abs() < 1e-12, "{table}");
    assert_eq!((cells[3], cells[4]), ("3", "0.25"));
    let md = p.read("results/seeded/cluster_quality.md");
    assert!(
        md.contains(&format!("| HOG → k-means | **{mean:.3} ± {std:.3}** | 0.250 |")),
        "{md}"
    );
    assert!(md.contains("References: a made-up paper."), "{md}");
    let tex = p.read("results/seeded/cluster_quality.tex");
    assert!(tex.contains("HOG $\\rightarrow$ k-means & $\\mathbf{"), "{tex}");
    assert!(tex.contains("\\toprule") && tex.contains("\\label{tab:cluster_quality}"), "{tex}");
    assert!(run.stdout.contains("table cluster_quality: "), "{}", run.stdout);
}

#[test]
fn without_tables_a_default_table_per_metric_is_written() {
    let p = Project::new();
    let text = SEEDED.split("[[tables]]").next().unwrap().to_string() + "[sweep]\n\"stages.clusters.k\" = [4, 16]\n";
    p.write("exp.toml", &text.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"));
    p.ktlab(&["run", "exp.toml"]).ok();
    for metric in ["nmi", "ari", "purity", "accuracy"] {
        let csv = p.read(&format!("results/seeded/{metric}.csv"));
        assert!(csv.starts_with("stage,k=4_mean,k=4_std,k=4_n,k=16_mean"), "{csv}");
        assert!(csv.lines().nth(1).unwrap().contains(",2,"), "two seeds per cell: {csv}");
    }
}

#[test]
fn report_rebuilds_the_tables_byte_for_byte_without_computing() {
    let p = Project::new();
    p.write("exp.toml", &SEEDED.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"));
    p.ktlab(&["run", "exp.toml"]).ok();
    let entries = p.entries();
    let files = [
        "results.csv",
        "results.md",
        "cluster_quality.csv",
        "cluster_quality.md",
        "cluster_quality.tex",
    ];
    let written: Vec<String> = files.iter().map(|f| p.read(&format!("results/seeded/{f}"))).collect();
    for f in files {
        std::fs::remove_file(p.path(&format!("results/seeded/{f}"))).unwrap();
    }
    p.ktlab(&["report", "exp.toml"]).ok();
    for (f, before) in files.iter().zip(&written) {
        assert_eq!(&p.read(&format!("results/seeded/{f}")), before, "{f} differs after report");
    }
    assert_eq!(p.entries(), entries, "report created or removed store entries");

    // An absent instance is named, and nothing is computed.
    let gone = entries.iter().find(|e| e.starts_with("kmeans/")).unwrap();
    std::fs::remove_dir_all(p.path(&format!("store/{gone}"))).unwrap();
    let r = p.ktlab(&["report", "exp.toml"]).fails(1);
    assert!(
        r.stderr.contains("1 stage instance(s) of seeded are not in the store: clusters[k="),
        "{}",
        r.stderr
    );
    assert_eq!(p.entries().len(), entries.len() - 1);
}

#[test]
fn provenance_traces_every_cell_to_its_instances() {
    // provenance.json lists, per cell, one instance per seed with its key and value, and
    // `explain --cell` shows the same instances with their key inputs.
    let p = Project::new();
    p.write("exp.toml", SEEDED);
    p.ktlab(&["run", "exp.toml", "-q"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&p.read("results/seeded/provenance.json")).unwrap();
    assert_eq!(doc["experiment"], "seeded");
    let table = &doc["tables"][0];
    assert_eq!(table["name"], "cluster_quality");
    let cell = table["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "k=4")
        .expect("a k=4 cell");
    assert_eq!(cell["row"], "HOG → k-means");
    assert_eq!(cell["n"], 3);
    let instances = cell["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    let mut seeds: Vec<u64> = instances.iter().map(|i| i["seeds"][0].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, [0, 1, 2]);
    let values: Vec<f64> = instances.iter().map(|i| i["value"].as_f64().unwrap()).collect();
    let mean = values.iter().sum::<f64>() / 3.0;
    assert!((mean - cell["mean"].as_f64().unwrap()).abs() < 1e-12);
    for i in instances {
        let key = i["key"].as_str().unwrap();
        assert_eq!(i["kind"], "cluster-metrics");
        assert!(p.path(&format!("store/cluster-metrics/{key}/manifest.json")).exists(), "{key}");
    }

    let r = p
        .ktlab(&["explain", "exp.toml", "--cell", "cluster_quality:HOG → k-means:k=4"])
        .ok();
    assert!(r.stdout.contains("3 value(s)"), "{}", r.stdout);
    for i in instances {
        assert!(r.stdout.contains(i["key"].as_str().unwrap()), "{}", r.stdout);
    }
    let r = p
        .ktlab(&["explain", "exp.toml", "--cell", "cluster_quality:HOG → k-means:k=5"])
        .fails(2);
    r.stderr_has("no column `k=5`").stderr_has("`k=4`");
    p.ktlab(&["explain", "exp.toml", "--cell", "cluster_quality"])
        .fails(2)
        .stderr_has("TABLE:ROW:COLUMN");
}
