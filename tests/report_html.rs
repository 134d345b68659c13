//! `results/<name>/index.html`: one self-contained page (no script, stylesheet, font or
//! image fetched), rebuilt byte for byte by `ktlab report`, and read by a real browser:
//! headless Chromium loads it from disk without console messages, every plot has a
//! non-empty box, and a cell's link opens its provenance (checked in a screenshot).
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Project, TINY_DATASETS};

const EXP: &str = r#"
name = "page"
seeds = [0, 1]

[stages.feat]
kind = "features"
model = "pixels"
data = "tiny:train"

[stages.clusters]
kind = "kmeans"
features = "feat"
k = 3
iterations = 5

[stages.labels]
kind = "assign"
centroids = "clusters"
features = "feat"

[stages.quality]
kind = "cluster-metrics"
label = "pixels <then> k-means"
labels = "labels"
truth = "tiny:train"

[stages.net]
kind = "train"
label = "supervised"
arch = "alexnet-small"
width = 0.25
data = "tiny:train"
labels = "truth"
epochs = 2
batch_size = 30

[[tables]]
name = "cluster_quality"
metric = "nmi"
rows = "stage"
columns = "stages.clusters.k"
caption = "NMI of the pixel clusters & the shapes"

[[tables.reference]]
row = "pixels <then> k-means"
column = "2"
value = 0.25
source = "a made-up paper"

[sweep]
"stages.clusters.k" = [2, 3]
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("datasets.toml", TINY_DATASETS);
    p.write("exp.toml", EXP);
    p.ktlab(&["run", "exp.toml"]).ok();
    p
}

#[test]
fn the_page_is_self_contained_complete_and_rebuilt_byte_for_byte() {
    let p = project();
    let page = p.read("results/page/index.html");
    for banned in ["<script", "<link", " src=", "url(", "@import", "@font-face"] {
        assert!(!page.contains(banned), "the page must fetch nothing: found `{banned}`");
    }
    let without_namespaces = page
        .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
        .replace("xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "");
    assert!(
        !without_namespaces.contains("http:") && !without_namespaces.contains("https:"),
        "no address to fetch"
    );
    // The table: caption, escaped labels, the reference and its difference, every cell a link.
    assert!(page.contains("NMI of the pixel clusters &amp; the shapes"), "caption");
    assert!(
        page.contains("<th scope=\"row\">pixels &lt;then&gt; k-means</th>"),
        "row label escaped"
    );
    assert!(
        page.contains("<th>k=2 ref.</th><th>Δ</th>") && page.contains(">0.250</td>"),
        "reference column"
    );
    assert!(page.contains("References: a made-up paper."));
    let table = &page[page.find("<table class=\"results\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<td class=\"num").count(),
        4,
        "two values, and a reference with its Δ: {table}"
    );
    assert_eq!(
        page.matches("href=\"#cell-cluster_quality-").count(),
        2,
        "each value links to its provenance"
    );
    assert_eq!(page.matches("<div class=\"cell\" id=\"cell-cluster_quality-").count(), 2);
    // Provenance: both seeds' instances, with their keys, under the first cell.
    let cell = &page[page.find("id=\"cell-cluster_quality-0-0\"").unwrap()..];
    let cell = &cell[..cell.find("</div>").unwrap()];
    assert!(
        cell.contains("2 value(s)") && cell.contains("quality [k=2,seed=0]") && cell.contains("quality [k=2,seed=1]"),
        "{cell}"
    );
    let store = p.path("store/cluster-metrics");
    let keys: Vec<String> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cell.matches("class=\"key\">").count(), 2);
    assert!(
        keys.iter().filter(|k| cell.contains(k.as_str())).count() == 2,
        "the full keys: {cell}"
    );
    // The plots inline (the table's and the training curves), the stage times, the file.
    assert_eq!(page.matches("<figure class=\"plot\">\n<svg").count(), 2, "two inline SVGs");
    assert!(page.contains("id=\"training-curves\""));
    let stages = &page[page.find("<section id=\"stages\">").unwrap()..];
    assert_eq!(
        stages.matches("<tr><td>").count(),
        1 + 2 + 4 + 4 + 4,
        "every instance with its time"
    );
    assert!(page.contains("name = &quot;page&quot;"), "the experiment file, escaped");
    assert!(page.contains("<dt>computed</dt><dd>20"), "when");
    assert!(page.contains("<dt>versions</dt><dd>ktlab "), "versions");
    // `ktlab report` writes the same bytes.
    p.ktlab(&["report", "exp.toml"]).ok();
    assert!(p.read("results/page/index.html") == page, "rebuilt byte for byte");
}

/// Headless Chromium where it is installed (`.ci/run` installs it).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs the browser headless on `url` with `args`; returns (stdout, stderr).
fn browse(browser: &Path, profile: &Path, url: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("the browser starts");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Pixels of the provenance box's border colour (#4a7) in a PNG screenshot.
fn border_pixels(png: &Path) -> usize {
    let img = image::open(png).unwrap_or_else(|e| panic!("{}: {e}", png.display())).to_rgb8();
    img.pixels().filter(|p| p.0 == [0x44, 0xaa, 0x77]).count()
}

#[test]
fn chromium_renders_the_page_without_console_messages_and_opens_a_cells_provenance() {
    let Some(browser) = chromium() else {
        ktlab::skip::skip(
            "report_html::chromium_renders_the_page",
            "no chromium on PATH (apt-get install chromium)",
        );
        return;
    };
    let p = project();
    let page_path = p.path("results/page/index.html");
    let page = std::fs::read_to_string(&page_path).unwrap();
    let profile = p.path("chromium-profile");
    let url = |file: &Path, fragment: &str| format!("file://{}{fragment}", file.display());
    // Loaded from disk: no console message at all (no script, nothing failed to load).
    let (_, log) = browse(&browser, &profile, &url(&page_path, ""), &["--dump-dom"]);
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Failed to load"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    // A copy with a measuring script (the page itself has none): each plot's box, and
    // which provenance boxes show with and without a cell's fragment.
    let probe = page.replace(
        "</body>",
        "<script>window.addEventListener('load', () => document.body.setAttribute('data-probe', JSON.stringify({\
         plots: [...document.querySelectorAll('figure.plot svg')].map(s => { const b = s.getBoundingClientRect(); return [b.width, b.height]; }),\
         shown: [...document.querySelectorAll('.cell')].filter(c => c.getBoundingClientRect().height > 0).map(c => c.id)})));</script></body>",
    );
    let probe_path = p.path("results/page/probe.html");
    std::fs::write(&probe_path, probe).unwrap();
    let measure = |fragment: &str| -> serde_json::Value {
        let (dom, _) = browse(
            &browser,
            &profile,
            &url(&probe_path, fragment),
            &["--dump-dom", "--virtual-time-budget=2000"],
        );
        let at = dom.find("data-probe=\"").unwrap_or_else(|| panic!("no measure in {dom}")) + 12;
        let raw = &dom[at..at + dom[at..].find('"').unwrap()];
        serde_json::from_str(&raw.replace("&quot;", "\"").replace("&amp;", "&")).unwrap()
    };
    let plain = measure("");
    let plots = plain["plots"].as_array().unwrap();
    assert_eq!(plots.len(), 2, "{plain}");
    for b in plots {
        assert!(
            b[0].as_f64().unwrap() > 100.0 && b[1].as_f64().unwrap() > 100.0,
            "a plot without a box: {plain}"
        );
    }
    assert_eq!(plain["shown"], serde_json::json!([]), "no provenance shown until asked");
    let opened = measure("#cell-cluster_quality-0-1");
    assert_eq!(opened["shown"], serde_json::json!(["cell-cluster_quality-0-1"]), "{opened}");
    // Screenshots: the provenance box's border shows only once its cell's link is followed.
    let shots = std::env::var_os("KTLAB_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| p.path("shots"));
    std::fs::create_dir_all(&shots).unwrap();
    let (top, cell) = (shots.join("report-top.png"), shots.join("report-cell.png"));
    browse(
        &browser,
        &profile,
        &url(&page_path, ""),
        &[&format!("--screenshot={}", top.display())],
    );
    browse(
        &browser,
        &profile,
        &url(&page_path, "#cell-cluster_quality-0-1"),
        &[&format!("--screenshot={}", cell.display())],
    );
    let (before, after) = (border_pixels(&top), border_pixels(&cell));
    assert_eq!(before, 0, "no provenance box on the page as it opens");
    assert!(after > 1000, "the opened provenance box's border: {after} pixels");
}
