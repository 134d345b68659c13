//! External clustering metrics (NMI, AMI, ARI, purity, clustering accuracy) and what the
//! cluster sizes say (their entropy, the largest cluster's share) in plain Rust, to score
//! pseudo-labels against ground-truth classes. NMI, AMI and ARI follow scikit-learn 1.x
//! (`normalized_mutual_info_score` and `adjusted_mutual_info_score` with the default
//! arithmetic normalisation, `adjusted_rand_score`) including their special
//! cases, and clustering accuracy is the best one-to-one matching that scipy's
//! `linear_sum_assignment` finds, so numbers are comparable with the Python ecosystem.

use std::collections::HashMap;
use std::hash::Hash;

use pathfinding::prelude::{kuhn_munkres, Matrix};

use super::error::ClusterError;

/// Integer types usable as cluster indices in [`cluster_sizes`].
pub trait ClusterIndex: Copy {
    /// The index, or `None` if negative / not representable.
    fn to_index(self) -> Option<usize>;
    /// The value for error messages.
    fn to_i64_lossy(self) -> i64;
}

macro_rules! impl_cluster_index {
    ($($t:ty),*) => {$(
        impl ClusterIndex for $t {
            fn to_index(self) -> Option<usize> {
                usize::try_from(self).ok()
            }
            fn to_i64_lossy(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
impl_cluster_index!(usize, u64, u32, i64, i32);

/// Sparse contingency table of two labelings of the same points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contingency<A, B> {
    /// Distinct labels of the first labeling, sorted (row order).
    pub row_labels: Vec<A>,
    /// Distinct labels of the second labeling, sorted (column order).
    pub col_labels: Vec<B>,
    /// Non-zero cells `(row, col, count)`, sorted by `(row, col)`.
    pub cells: Vec<(usize, usize, u64)>,
    /// Points per row.
    pub row_sums: Vec<u64>,
    /// Points per column.
    pub col_sums: Vec<u64>,
    /// Number of points.
    pub n: u64,
}

impl<A, B> Contingency<A, B> {
    /// The table as a dense `rows x cols` matrix (only for small tables).
    pub fn dense(&self) -> Vec<Vec<u64>> {
        let mut m = vec![vec![0u64; self.col_labels.len()]; self.row_labels.len()];
        for &(i, j, v) in &self.cells {
            m[i][j] = v;
        }
        m
    }
}

fn check_lengths(a: usize, b: usize) -> Result<(), ClusterError> {
    if a != b {
        return Err(ClusterError::LengthMismatch { left: a, right: b });
    }
    Ok(())
}

/// Sorted distinct labels and the row index of each point.
fn encode<L: Copy + Ord + Hash>(labels: &[L]) -> (Vec<L>, Vec<usize>) {
    let mut distinct: Vec<L> = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let index: HashMap<L, usize> = distinct.iter().enumerate().map(|(i, &l)| (l, i)).collect();
    let codes = labels.iter().map(|l| index[l]).collect();
    (distinct, codes)
}

/// Contingency table of `labels_true` (rows) against `labels_pred` (columns).
pub fn contingency<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<Contingency<A, B>, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    check_lengths(labels_true.len(), labels_pred.len())?;
    let (row_labels, rows) = encode(labels_true);
    let (col_labels, cols) = encode(labels_pred);
    let mut row_sums = vec![0u64; row_labels.len()];
    let mut col_sums = vec![0u64; col_labels.len()];
    let mut map: HashMap<(usize, usize), u64> = HashMap::new();
    for (&i, &j) in rows.iter().zip(&cols) {
        *map.entry((i, j)).or_insert(0) += 1;
        row_sums[i] += 1;
        col_sums[j] += 1;
    }
    let mut cells: Vec<(usize, usize, u64)> = map.into_iter().map(|((i, j), v)| (i, j, v)).collect();
    cells.sort_unstable();
    Ok(Contingency {
        row_labels,
        col_labels,
        cells,
        row_sums,
        col_sums,
        n: labels_true.len() as u64,
    })
}

/// Mutual information in nats, computed like `sklearn.metrics.mutual_info_score`
/// (per-cell terms below machine epsilon are zeroed, result clipped at 0).
fn mutual_info<A, B>(c: &Contingency<A, B>) -> f64 {
    if c.row_sums.len() == 1 || c.col_sums.len() == 1 {
        return 0.0;
    }
    let total = c.n as f64;
    let log_total = total.ln();
    let mut mi = 0.0f64;
    for &(i, j, v) in &c.cells {
        let v = v as f64;
        let nm = v / total;
        let outer = (c.row_sums[i] as f64) * (c.col_sums[j] as f64);
        let log_outer = -outer.ln() + log_total + log_total;
        let term = nm * (v.ln() - log_total) + nm * log_outer;
        if term.abs() >= f64::EPSILON {
            mi += term;
        }
    }
    mi.max(0.0)
}

/// Entropy in nats of a labeling given its cluster sizes (sklearn `_entropy`).
fn entropy(sizes: &[u64]) -> f64 {
    if sizes.is_empty() {
        return 1.0;
    }
    if sizes.len() == 1 {
        return 0.0;
    }
    let total = sizes.iter().sum::<u64>() as f64;
    let log_total = total.ln();
    -sizes
        .iter()
        .map(|&s| {
            let s = s as f64;
            (s / total) * (s.ln() - log_total)
        })
        .sum::<f64>()
}

/// What NMI and AMI start from: the contingency table, the mutual information and the mean
/// of the two entropies.
struct Information<A, B> {
    table: Contingency<A, B>,
    mi: f64,
    normalizer: f64,
}

/// [`Information`] of two labelings; `None` when both have one cluster (or are empty),
/// where scikit-learn defines NMI and AMI as 1.
fn information<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<Option<Information<A, B>>, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    let table = contingency(labels_true, labels_pred)?;
    let (r, k) = (table.row_labels.len(), table.col_labels.len());
    if (r == 1 && k == 1) || (r == 0 && k == 0) {
        return Ok(None);
    }
    let mi = mutual_info(&table);
    let normalizer = (entropy(&table.row_sums) + entropy(&table.col_sums)) / 2.0;
    Ok(Some(Information { table, mi, normalizer }))
}

/// Normalised mutual information, `MI / mean(H(true), H(pred))`, exactly like
/// scikit-learn's `normalized_mutual_info_score(average_method="arithmetic")`:
/// 1.0 when both labelings have a single cluster (or are empty), 0.0 when
/// the mutual information is 0.
pub fn nmi<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<f64, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    let Some(Information { mi, normalizer, .. }) = information(labels_true, labels_pred)? else {
        return Ok(1.0);
    };
    if mi == 0.0 {
        return Ok(0.0);
    }
    Ok(mi / normalizer)
}

/// Expected mutual information of two labelings with the table's row and column sums under
/// the hypergeometric model of random labelings with those sizes (Vinh, Epps and Bailey
/// 2010), as scikit-learn's `expected_mutual_information` computes it.
fn expected_mutual_info<A, B>(c: &Contingency<A, B>) -> f64 {
    let n = c.n as usize;
    // ln(k!) for k = 0..=n.
    let mut lf = vec![0.0f64; n + 1];
    for k in 1..=n {
        lf[k] = lf[k - 1] + (k as f64).ln();
    }
    let total = n as f64;
    let mut emi = 0.0f64;
    for &a in &c.row_sums {
        let a = a as usize;
        for &b in &c.col_sums {
            let b = b as usize;
            let start = (a + b).saturating_sub(n).max(1);
            let end = a.min(b);
            let fixed = lf[a] + lf[b] + lf[n - a] + lf[n - b] - lf[n];
            for nij in start..=end {
                let term2 = (total * nij as f64).ln() - (a as f64).ln() - (b as f64).ln();
                let gln = fixed - lf[nij] - lf[a - nij] - lf[b - nij] - lf[n + nij - a - b];
                emi += (nij as f64 / total) * term2 * gln.exp();
            }
        }
    }
    emi
}

/// Adjusted mutual information, `(MI - E[MI]) / (mean(H(true), H(pred)) - E[MI])`, exactly
/// like scikit-learn's `adjusted_mutual_info_score(average_method="arithmetic")`: NMI
/// corrected for chance, so that a random labeling scores about 0 whatever the number of
/// clusters (NMI of random labels grows with it: about 0.115 for 1,000 clusters of 10,000
/// points). 1.0 when both labelings have one cluster (or are empty).
pub fn ami<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<f64, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    let Some(Information { table, mi, normalizer }) = information(labels_true, labels_pred)? else {
        return Ok(1.0);
    };
    let emi = expected_mutual_info(&table);
    let mut denominator = normalizer - emi;
    denominator = if denominator < 0.0 {
        denominator.min(-f64::EPSILON)
    } else {
        denominator.max(f64::EPSILON)
    };
    Ok((mi - emi) / denominator)
}

/// Entropy in nats of the cluster sizes (`ln k` when all `k` are equal; 0 when one cluster
/// holds every point) and the largest cluster's share of the points: a clustering that puts
/// most points in a few clusters gives a target little to learn.
pub fn size_balance<L: Copy + Ord + Hash>(assignments: &[L]) -> (f64, f64) {
    let (distinct, codes) = encode(assignments);
    let mut sizes = vec![0u64; distinct.len()];
    for c in codes {
        sizes[c] += 1;
    }
    let largest = sizes.iter().copied().max().unwrap_or(0) as f64 / assignments.len().max(1) as f64;
    let h = if sizes.len() <= 1 { 0.0 } else { entropy(&sizes) };
    (h, largest)
}

/// Adjusted Rand index, exactly like scikit-learn's `adjusted_rand_score`
/// (pair counts in exact integer arithmetic; 1.0 for empty input or when
/// no pair is split differently by the two labelings).
pub fn ari<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<f64, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    let c = contingency(labels_true, labels_pred)?;
    let n = i128::from(c.n);
    let mut sum_squares = 0i128;
    let mut dot_cols = 0i128;
    let mut dot_rows = 0i128;
    for &(i, j, v) in &c.cells {
        let v = i128::from(v);
        sum_squares += v * v;
        dot_cols += v * i128::from(c.col_sums[j]);
        dot_rows += v * i128::from(c.row_sums[i]);
    }
    // sklearn's pair_confusion_matrix (ordered pairs).
    let tp = sum_squares - n;
    let fp = dot_cols - sum_squares;
    let fn_ = dot_rows - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0 && fp == 0 {
        return Ok(1.0);
    }
    let num = 2 * (tp * tn - fn_ * fp);
    let den = (tp + fn_) * (fn_ + tn) + (tp + fp) * (fp + tn);
    Ok(num as f64 / den as f64)
}

/// Purity: the fraction of points whose predicted cluster's majority true
/// class equals their own, `(1/n) Σ_clusters max_class |cluster ∩ class|`.
/// 1.0 for empty input (by the same convention as NMI and ARI).
pub fn purity<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<f64, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    let c = contingency(labels_true, labels_pred)?;
    if c.n == 0 {
        return Ok(1.0);
    }
    let mut best = vec![0u64; c.col_labels.len()];
    for &(_, j, v) in &c.cells {
        best[j] = best[j].max(v);
    }
    Ok(best.iter().sum::<u64>() as f64 / c.n as f64)
}

/// Clustering accuracy as IIC and SCAN report it: the fraction of points whose cluster
/// is matched to their class by the best one-to-one matching of clusters to classes
/// (the Hungarian algorithm on the contingency table). With more clusters than classes
/// (or fewer), the matching is rectangular: the clusters (classes) left unmatched count
/// as wrong. 1.0 for empty input (by the same convention as NMI and ARI).
pub fn accuracy<A, B>(labels_true: &[A], labels_pred: &[B]) -> Result<f64, ClusterError>
where
    A: Copy + Ord + Hash,
    B: Copy + Ord + Hash,
{
    let c = contingency(labels_true, labels_pred)?;
    if c.n == 0 {
        return Ok(1.0);
    }
    // Kuhn-Munkres wants no more rows than columns: the smaller side are the rows.
    let (classes, clusters) = (c.row_labels.len(), c.col_labels.len());
    let (rows, cols) = (classes.min(clusters), classes.max(clusters));
    let mut weights = Matrix::new(rows, cols, 0i64);
    for &(class, cluster, count) in &c.cells {
        // A count is at most n, and n points fit in memory: no overflow.
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        let at = if classes <= clusters { (class, cluster) } else { (cluster, class) };
        weights[at] = count;
    }
    let (matched, _) = kuhn_munkres(&weights);
    Ok(matched as f64 / c.n as f64)
}

/// Number of points in each of the clusters `0..k`; a label outside `0..k`
/// is an error.
pub fn cluster_sizes<L: ClusterIndex>(assignments: &[L], k: usize) -> Result<Vec<usize>, ClusterError> {
    let mut sizes = vec![0usize; k];
    for (index, &l) in assignments.iter().enumerate() {
        match l.to_index() {
            Some(i) if i < k => sizes[i] += 1,
            _ => {
                return Err(ClusterError::LabelOutOfRange {
                    label: l.to_i64_lossy(),
                    index,
                    k,
                })
            }
        }
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn contingency_by_hand() {
        let c = contingency(&[5i64, 5, 5, 9, 9, 9], &[0usize, 0, 1, 1, 2, 2]).unwrap();
        assert_eq!(c.row_labels, vec![5, 9]);
        assert_eq!(c.col_labels, vec![0, 1, 2]);
        assert_eq!(c.dense(), vec![vec![2, 1, 0], vec![0, 1, 2]]);
        assert_eq!(c.row_sums, vec![3, 3]);
        assert_eq!(c.col_sums, vec![2, 2, 2]);
        assert_eq!(c.n, 6);
    }

    #[test]
    fn hand_computed_values() {
        let t = [0usize, 0, 0, 1, 1, 1];
        let p = [0usize, 0, 1, 1, 2, 2];
        // MI = (2/3) ln 2, H(t) = ln 2, H(p) = ln 3.
        let expected_nmi = (2.0 / 3.0) * 2f64.ln() / ((2f64.ln() + 3f64.ln()) / 2.0);
        assert!(close(nmi(&t, &p).unwrap(), expected_nmi));
        // sum C(n_ij,2) = 2, sum C(a_i,2) = 6, sum C(b_j,2) = 3, C(6,2) = 15.
        let expected_ari = (2.0 - 6.0 * 3.0 / 15.0) / ((6.0 + 3.0) / 2.0 - 6.0 * 3.0 / 15.0);
        assert!(close(ari(&t, &p).unwrap(), expected_ari));
        assert!(close(purity(&t, &p).unwrap(), 5.0 / 6.0));
        // Permuted cluster names do not matter.
        assert_eq!(nmi(&[0, 0, 1, 1], &[1, 1, 0, 0]).unwrap(), 1.0);
        assert_eq!(ari(&[0, 0, 1, 1], &[1, 1, 0, 0]).unwrap(), 1.0);
    }

    #[test]
    fn scikit_learn_degenerate_cases() {
        // Values from scikit-learn 1.9 (see its docstrings and tests).
        assert_eq!(ari(&[0, 0, 1, 1], &[0, 1, 0, 1]).unwrap(), -0.5);
        assert_eq!(ari(&[0, 0, 0, 0], &[0, 1, 2, 3]).unwrap(), 0.0);
        assert_eq!(nmi(&[0, 0, 0, 0], &[0, 1, 2, 3]).unwrap(), 0.0);
        assert_eq!(nmi(&[3, 3, 3], &[7, 7, 7]).unwrap(), 1.0);
        assert_eq!(ari(&[3, 3, 3], &[7, 7, 7]).unwrap(), 1.0);
        let empty: [i64; 0] = [];
        assert_eq!(nmi(&empty, &empty).unwrap(), 1.0);
        assert_eq!(ari(&empty, &empty).unwrap(), 1.0);
        assert_eq!(nmi(&[1], &[2]).unwrap(), 1.0);
        assert_eq!(ari(&[0, 1, 2], &[0, 1, 2]).unwrap(), 1.0);
        assert_eq!(nmi(&[0, 1, 2], &[5, 6, 7]).unwrap(), 1.0);
        // Every point its own cluster vs one cluster.
        assert_eq!(ari(&[0, 1, 2, 3], &[0, 0, 0, 0]).unwrap(), 0.0);
    }

    #[test]
    fn scikit_learn_numbers() {
        // scikit-learn 1.9.1: normalized_mutual_info_score(a, b), adjusted_rand_score(a, b)
        let a = [0i64, 0, 1, 1, 2, 2, 2, 0];
        let b = [1i64, 1, 1, 0, 0, 2, 2, 2];
        let sk_nmi = 0.398747820241147_f64;
        let sk_ari = 0.047619047619047616_f64;
        assert!(close(nmi(&a, &b).unwrap(), sk_nmi), "{}", nmi(&a, &b).unwrap());
        assert!(close(ari(&a, &b).unwrap(), sk_ari), "{}", ari(&a, &b).unwrap());
        // Symmetry of both scores.
        assert!(close(nmi(&b, &a).unwrap(), sk_nmi));
        assert!(close(ari(&b, &a).unwrap(), sk_ari));
    }

    /// Values stored by `tests/reference/kmeans_reference.py`.
    #[test]
    fn scikit_learn_numbers_from_reference_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/kmeans_reference.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = v["metrics"].as_array().unwrap();
        assert!(!cases.is_empty());
        for case in cases {
            let ints = |key: &str| -> Vec<i64> { case[key].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() };
            let (a, b) = (ints("labels_true"), ints("labels_pred"));
            let (n, r) = (nmi(&a, &b).unwrap(), ari(&a, &b).unwrap());
            let (sn, sr) = (case["nmi"].as_f64().unwrap(), case["ari"].as_f64().unwrap());
            assert!(close(n, sn), "nmi {n} vs sklearn {sn}");
            assert!(close(r, sr), "ari {r} vs sklearn {sr}");
        }
    }

    #[test]
    fn accuracy_by_hand() {
        // Cluster names permuted: a perfect matching exists.
        assert_eq!(accuracy(&[0, 0, 1, 1, 2], &[2, 2, 0, 0, 1]).unwrap(), 1.0);
        // Purity gives both clusters to class 0 (3 + 2 of 6); a one-to-one matching
        // must give cluster 1 to class 1 (3 + 1 of 6).
        let t = [0usize, 0, 0, 0, 0, 1];
        let p = [0usize, 0, 0, 1, 1, 1];
        assert!(close(purity(&t, &p).unwrap(), 5.0 / 6.0));
        assert!(close(accuracy(&t, &p).unwrap(), 4.0 / 6.0));
        // Four clusters, two classes: only two clusters can be matched.
        let t = [0usize, 0, 0, 0, 1, 1, 1, 1];
        let p = [0usize, 0, 1, 1, 2, 2, 3, 3];
        assert!(close(purity(&t, &p).unwrap(), 1.0));
        assert!(close(accuracy(&t, &p).unwrap(), 0.5));
        // One cluster, three classes: only the largest class is right.
        assert!(close(accuracy(&[0, 1, 1, 2, 2, 2], &[7, 7, 7, 7, 7, 7]).unwrap(), 0.5));
        let empty: [i64; 0] = [];
        assert_eq!(accuracy(&empty, &empty).unwrap(), 1.0);
        assert!(accuracy(&[0], &[0, 1]).is_err());
    }

    /// Values stored by `tests/reference/clustering_accuracy_reference.py` (scipy's
    /// `linear_sum_assignment` on random labelings with fewer, as many and more
    /// clusters than classes).
    #[test]
    fn accuracy_matches_scipy_linear_sum_assignment() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/clustering_accuracy_reference.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = v["cases"].as_array().unwrap();
        let shape = |case: &serde_json::Value| (case["clusters"].as_u64().unwrap(), case["classes"].as_u64().unwrap());
        assert!(cases.iter().any(|c| shape(c).0 < shape(c).1), "no case with k < c");
        assert!(cases.iter().any(|c| shape(c).0 == shape(c).1), "no case with k = c");
        assert!(cases.iter().any(|c| shape(c).0 > shape(c).1), "no case with k > c");
        for case in cases {
            let ints = |key: &str| -> Vec<i64> { case[key].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() };
            let (t, p) = (ints("labels_true"), ints("labels_pred"));
            let ours = accuracy(&t, &p).unwrap();
            let scipy = case["accuracy"].as_f64().unwrap();
            assert!((ours - scipy).abs() <= 1e-12, "{:?}: accuracy {ours} vs scipy {scipy}", shape(case));
        }
    }

    /// scikit-learn's `adjusted_mutual_info_score` on random and structured labelings
    /// (tests/reference/ami_reference.py): equal to 1e-9; random labels with k = 200 have NMI
    /// 0.139 and AMI about 0, which is what AMI is for.
    #[test]
    fn ami_matches_scikit_learn() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ami_reference.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 6);
        for (i, case) in cases.iter().enumerate() {
            let ints = |key: &str| -> Vec<i64> { case[key].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect() };
            let (t, p) = (ints("truth"), ints("pred"));
            let (want_ami, want_nmi) = (case["ami"].as_f64().unwrap(), case["nmi"].as_f64().unwrap());
            let got = ami(&t, &p).unwrap();
            assert!((got - want_ami).abs() <= 1e-9, "case {i}: AMI {got} vs scikit-learn {want_ami}");
            assert!((nmi(&t, &p).unwrap() - want_nmi).abs() <= 1e-12, "case {i}: NMI");
        }
        let random_many = &cases[1];
        assert!(random_many["nmi"].as_f64().unwrap() > 0.1 && random_many["ami"].as_f64().unwrap().abs() < 0.01);
    }

    #[test]
    fn size_balance_is_entropy_and_largest_share() {
        let (h, largest) = size_balance(&[0, 1, 2, 3, 0, 1, 2, 3]);
        assert!((h - 4f64.ln()).abs() < 1e-12 && largest == 0.25);
        let (h, largest) = size_balance(&[5, 5, 5, 5]);
        assert!(h == 0.0 && largest == 1.0);
        let (h, largest) = size_balance(&[0, 0, 0, 1]);
        assert!((h - (-(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln()))).abs() < 1e-12 && largest == 0.75);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let e = nmi(&[0, 1], &[0, 1, 2]).unwrap_err();
        assert_eq!(e.to_string(), "label sequences differ in length: 2 vs 3");
        assert!(ari(&[0], &[0, 1]).is_err());
        assert!(purity(&[0], &[0, 1]).is_err());
        assert!(contingency(&[0], &[0, 1]).is_err());
    }

    #[test]
    fn cluster_sizes_counts_and_rejects_out_of_range() {
        assert_eq!(cluster_sizes(&[0i64, 2, 2, 0, 2], 4).unwrap(), vec![2, 0, 3, 0]);
        assert_eq!(cluster_sizes(&[1usize, 1], 2).unwrap(), vec![0, 2]);
        let e = cluster_sizes(&[0i64, -1], 2).unwrap_err();
        assert_eq!(e.to_string(), "label -1 at position 1 is outside 0..2");
        assert!(cluster_sizes(&[0usize, 2], 2).is_err());
    }

    #[test]
    fn large_inputs_do_not_overflow() {
        // Pair counts reach ~4e12 here and products of them ~1e25 (beyond u64).
        let n = 2_000_000usize;
        let a: Vec<usize> = (0..n).map(|i| i % 1000).collect();
        let b: Vec<usize> = (0..n).map(|i| (i / 7) % 1000).collect();
        // scikit-learn 1.9.1 on the same labelings.
        let (sk_ari, sk_nmi) = (0.1415705346589988, 0.7183007184676345);
        let (r, m) = (ari(&a, &b).unwrap(), nmi(&a, &b).unwrap());
        assert!((r - sk_ari).abs() < 1e-12, "ari {r}");
        assert!((m - sk_nmi).abs() < 1e-12, "nmi {m}");
        assert_eq!(ari(&a, &a).unwrap(), 1.0);
        assert!(close(nmi(&a, &a).unwrap(), 1.0));
    }
}
