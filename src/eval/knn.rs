//! Weighted k-nearest-neighbour classification on cosine similarity (Wu et al. 2018): each
//! test row's k most similar training rows vote for their class with weight
//! `exp(similarity / temperature)`. Optionally the features are first standardised with the
//! memory bank's per-dimension mean and standard deviation: post-ReLU features are all
//! positive and far from centred, so their cosine is dominated by the mean direction and a
//! few large dimensions. Test rows go in blocks, so that at most a block of rows
//! times the training rows of similarities is ever held.
use tch::{Kind, TchError, Tensor};

/// Similarities held at once when the block size is chosen from the memory bank's size
/// (64 MiB of f32).
pub const BLOCK_ELEMENTS: i64 = 1 << 24;

#[derive(Clone, Debug, PartialEq)]
pub struct KnnConfig {
    /// Neighbours that vote.
    pub k: i64,
    /// Softness of the vote: weights are `exp(similarity / temperature)`.
    pub temperature: f64,
    /// Test rows per block; `None`: as many as keep a block under [`BLOCK_ELEMENTS`].
    pub block_rows: Option<i64>,
    /// Standardise every dimension with the memory bank's mean and standard deviation
    /// (test rows with the bank's statistics) before the cosine.
    pub standardize: bool,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            k: 20,
            temperature: 0.07,
            block_rows: None,
            standardize: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct KnnScores {
    /// The predicted class of every test row.
    pub predictions: Vec<i64>,
    pub top1: f64,
    /// With more than five classes: the true class among the five with most votes.
    pub top5: Option<f64>,
}

/// Each row to unit length (a zero row stays zero).
fn unit_rows(x: &Tensor) -> Tensor {
    let norm = x.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-12);
    x / norm
}

/// The class votes `[b, classes]` of the test rows `test` `[b, d]` (unit rows) from the
/// memory bank `bank` `[n, d]` (unit rows) labeled `labels` `[n]`.
fn votes(test: &Tensor, bank: &Tensor, labels: &Tensor, classes: i64, cfg: &KnnConfig) -> Result<Tensor, TchError> {
    let sim = test.f_matmul(&bank.tr())?; // [b, n]
    let (top, idx) = sim.f_topk(cfg.k, 1, true, true)?; // [b, k]
    let weights = (top / cfg.temperature).exp().to_kind(Kind::Double); // [b, k]
    let neighbour_labels = labels.index_select(0, &idx.flatten(0, -1)).view_as(&idx); // [b, k]
    let b = test.size()[0];
    Tensor::zeros([b, classes], (Kind::Double, test.device())).f_scatter_add(1, &neighbour_labels, &weights)
}

/// Classifies every row of `test` `[m, d]` by its neighbours among `train` `[n, d]`
/// (labels `train_labels` `[n]` in `0..classes`) and scores it against `test_labels` `[m]`.
/// `cfg.k` must be at most `n` (else libtorch's error).
pub fn knn_classify(
    train: &Tensor,
    train_labels: &Tensor,
    test: &Tensor,
    test_labels: &Tensor,
    classes: i64,
    cfg: &KnnConfig,
) -> Result<KnnScores, TchError> {
    tch::no_grad(|| {
        let train = train.to_kind(Kind::Float);
        // Identity unless standardising: (x - mean) / std with the bank's statistics.
        let (shift, scale) = if cfg.standardize {
            let mean = train.mean_dim(Some([0i64].as_slice()), true, Kind::Float);
            let std = train.std_dim(Some([0i64].as_slice()), false, true).clamp_min(1e-6);
            (Some(mean), Some(std))
        } else {
            (None, None)
        };
        let standardized = |x: Tensor| match (&shift, &scale) {
            (Some(m), Some(s)) => (x - m) / s,
            _ => x,
        };
        let bank = unit_rows(&standardized(train));
        let n = bank.size()[0];
        let m = test.size()[0];
        let block = cfg.block_rows.unwrap_or(BLOCK_ELEMENTS / n.max(1)).max(1);
        let train_labels = train_labels.to_kind(Kind::Int64);
        let mut predictions = Vec::with_capacity(m as usize);
        let (mut correct1, mut correct5) = (0i64, 0i64);
        let top5 = classes > 5;
        let mut start = 0;
        while start < m {
            let len = block.min(m - start);
            let rows = unit_rows(&standardized(test.narrow(0, start, len).to_kind(Kind::Float))); // [b, d]
            let truth = test_labels.narrow(0, start, len).to_kind(Kind::Int64); // [b]
            let v = votes(&rows, &bank, &train_labels, classes, cfg)?; // [b, classes]
            let pred = v.argmax(1, false);
            correct1 += pred.eq_tensor(&truth).sum(Kind::Int64).int64_value(&[]);
            if top5 {
                let (_, best) = v.f_topk(5, 1, true, true)?;
                correct5 += best
                    .eq_tensor(&truth.unsqueeze(1))
                    .any_dim(1, false)
                    .sum(Kind::Int64)
                    .int64_value(&[]);
            }
            predictions.extend(Vec::<i64>::try_from(pred.to_device(tch::Device::Cpu))?);
            start += len;
        }
        let denom = m.max(1) as f64;
        Ok(KnnScores {
            predictions,
            top1: correct1 as f64 / denom,
            top5: top5.then(|| correct5 as f64 / denom),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Uncentred features whose cosine is dominated by a large offset and six wide
    /// uninformative dimensions (as post-ReLU features can be): the class lives in eight small
    /// dimensions the raw cosine barely sees; the bank's standardisation brings it out.
    #[test]
    fn standardizing_recovers_a_class_signal_hidden_by_an_offset() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut make = |n: usize| {
            let mut rows = Vec::new();
            let mut labels = Vec::new();
            for i in 0..n {
                let class = (i % 2) as i64;
                rows.push(100.0 + 40.0 * (rng.gen::<f32>() - 0.5));
                for _ in 0..6 {
                    rows.push(30.0 * (rng.gen::<f32>() - 0.5));
                }
                for j in 0..8 {
                    let sign = if (class + j) % 2 == 0 { 1.0f32 } else { -1.0 };
                    rows.push(0.5 * sign + 0.2 * (rng.gen::<f32>() - 0.5));
                }
                labels.push(class);
            }
            (Tensor::from_slice(&rows).reshape([n as i64, 15]), Tensor::from_slice(&labels))
        };
        let (bank, bank_labels) = make(400);
        let (test, test_labels) = make(200);
        let raw = KnnConfig {
            k: 10,
            ..KnnConfig::default()
        };
        let std = KnnConfig {
            standardize: true,
            ..raw.clone()
        };
        let a = knn_classify(&bank, &bank_labels, &test, &test_labels, 2, &raw).unwrap();
        let b = knn_classify(&bank, &bank_labels, &test, &test_labels, 2, &std).unwrap();
        assert!(b.top1 > 0.97, "standardised {b:?}");
        assert!(a.top1 < 0.8, "raw cosine {}", a.top1);
    }

    /// The rule written out plainly in f64: the whole similarity matrix, each row sorted,
    /// the k best weighted by exp(sim / T), summed per class, the largest sum.
    fn brute_force(train: &[Vec<f64>], labels: &[i64], test: &[Vec<f64>], classes: usize, k: usize, t: f64) -> Vec<i64> {
        let unit = |v: &Vec<f64>| {
            let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.iter().map(|x| x / n).collect::<Vec<f64>>()
        };
        let bank: Vec<Vec<f64>> = train.iter().map(unit).collect();
        let sims: Vec<Vec<f64>> = test
            .iter()
            .map(|q| {
                let q = unit(q);
                bank.iter().map(|b| b.iter().zip(&q).map(|(a, c)| a * c).sum()).collect()
            })
            .collect();
        sims.iter()
            .map(|row| {
                let mut order: Vec<usize> = (0..row.len()).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                let mut votes = vec![0f64; classes];
                for &j in &order[..k] {
                    votes[labels[j] as usize] += (row[j] / t).exp();
                }
                let mut best = 0;
                for c in 1..classes {
                    if votes[c] > votes[best] {
                        best = c;
                    }
                }
                best as i64
            })
            .collect()
    }

    /// Clustered random data (so neighbours mean something) as rows and as a tensor.
    fn data(rng: &mut ChaCha8Rng, n: usize, d: usize, classes: usize, centres: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<i64>) {
        let labels: Vec<i64> = (0..n).map(|_| rng.gen_range(0..classes) as i64).collect();
        let rows = labels
            .iter()
            .map(|&l| (0..d).map(|j| centres[l as usize][j] + rng.gen_range(-1.5..1.5)).collect())
            .collect();
        (rows, labels)
    }

    fn tensor(rows: &[Vec<f64>]) -> Tensor {
        let flat: Vec<f32> = rows.iter().flatten().map(|&x| x as f32).collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, rows[0].len() as i64])
    }

    #[test]
    fn agrees_with_brute_force_and_with_any_block_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(2018);
        let (d, classes) = (16, 7);
        let centres: Vec<Vec<f64>> = (0..classes).map(|_| (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
        let (train, train_y) = data(&mut rng, 300, d, classes, &centres);
        let (test, test_y) = data(&mut rng, 101, d, classes, &centres);
        let (xt, yt) = (tensor(&train), Tensor::from_slice(&train_y));
        let (xq, yq) = (tensor(&test), Tensor::from_slice(&test_y));
        for (k, t) in [(20, 0.07), (1, 0.07), (5, 1.0)] {
            let expected = brute_force(&train, &train_y, &test, classes, k, t);
            let cfg = KnnConfig {
                k: k as i64,
                temperature: t,
                block_rows: None,
                standardize: false,
            };
            let whole = knn_classify(&xt, &yt, &xq, &yq, classes as i64, &cfg).unwrap();
            assert_eq!(whole.predictions, expected, "k = {k}, T = {t}");
            let right = expected.iter().zip(&test_y).filter(|(p, y)| p == y).count();
            assert_eq!(whole.top1, right as f64 / test.len() as f64);
            // Above chance (1/7) by far, below perfect: the test is not trivial.
            assert!(whole.top1 > 0.5 && whole.top1 < 1.0, "top-1 {}", whole.top1);
            let top5 = whole.top5.expect("7 classes have a top-5");
            assert!(top5 >= whole.top1);
            for block in [1, 7, 100] {
                let blocked = knn_classify(
                    &xt,
                    &yt,
                    &xq,
                    &yq,
                    classes as i64,
                    &KnnConfig {
                        block_rows: Some(block),
                        ..cfg.clone()
                    },
                )
                .unwrap();
                assert_eq!(blocked, whole, "block of {block} rows, k = {k}");
            }
        }
    }

    #[test]
    fn the_weights_decide_between_classes() {
        // Three neighbours: two of class 0 a little less similar than one of class 1.
        // A hard temperature lets the closest win; a soft one lets the majority win.
        let train = Tensor::from_slice(&[1.0f32, 0.0, 0.8, 0.6, 0.8, -0.6, -1.0, 0.0]).view([4, 2]);
        let labels = Tensor::from_slice(&[1i64, 0, 0, 1]);
        let test = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let truth = Tensor::from_slice(&[0i64]);
        let run = |t: f64| {
            let cfg = KnnConfig {
                k: 3,
                temperature: t,
                block_rows: None,
                standardize: false,
            };
            knn_classify(&train, &labels, &test, &truth, 2, &cfg).unwrap()
        };
        assert_eq!(run(0.01).predictions, vec![1]);
        assert_eq!(run(10.0).predictions, vec![0]);
        assert_eq!(run(10.0).top1, 1.0);
        assert_eq!(run(10.0).top5, None);
        // More neighbours than rows: an error, not a panic.
        let cfg = KnnConfig {
            k: 5,
            ..KnnConfig::default()
        };
        assert!(knn_classify(&train, &labels, &test, &truth, 2, &cfg).is_err());
    }
}
