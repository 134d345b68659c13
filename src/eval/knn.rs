//! Weighted k-nearest-neighbour classification on cosine similarity (Wu et al. 2018): each
//! test row's k most similar training rows vote for their class with weight
//! `exp(similarity / temperature)`. Optionally the features are first standardised with the
//! memory bank's per-dimension mean and standard deviation: post-ReLU features are all
//! positive and far from centred, so their cosine is dominated by the mean direction and a
//! few large dimensions. Test rows go in blocks, so that at most a block of rows
//! times the training rows of similarities is ever held; a memory bank larger than
//! [`BANK_BYTES`] is read in blocks too, each block's nearest rows merged into a running
//! top k, so that memory does not grow with the bank (the bank is read once per test block).
use tch::{Device, Kind, TchError, Tensor};

use super::features::{Standardize, BANK_BYTES};

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
    /// Memory-bank rows per block; `None`: the whole bank up to `BANK_BYTES`, else as
    /// many rows as that holds.
    pub bank_rows: Option<i64>,
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
            bank_rows: None,
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

/// The class votes `[b, classes]` of test rows whose `k` nearest bank rows have the
/// similarities `top` `[b, k]` and the indices `idx` `[b, k]` into `labels` `[n]`.
fn votes(top: &Tensor, idx: &Tensor, labels: &Tensor, classes: i64, cfg: &KnnConfig) -> Result<Tensor, TchError> {
    let weights = (top / cfg.temperature).exp().to_kind(Kind::Double); // [b, k]
    let neighbour_labels = labels.index_select(0, &idx.flatten(0, -1)).view_as(idx); // [b, k]
    let b = top.size()[0];
    Tensor::zeros([b, classes], (Kind::Double, top.device())).f_scatter_add(1, &neighbour_labels, &weights)
}

/// The `k` largest similarities of `rows` `[b, d]` (prepared) to the bank `train` `[n, d]`
/// read `bank_rows` rows at a time (each block prepared by `prepare`), with their row
/// indices: each block's best, merged into the running best.
fn nearest_in_blocks(
    rows: &Tensor,
    train: &Tensor,
    bank_rows: i64,
    k: i64,
    prepare: &dyn Fn(&Tensor) -> Tensor,
) -> Result<(Tensor, Tensor), TchError> {
    let n = train.size()[0];
    let mut best: Option<(Tensor, Tensor)> = None;
    let mut start = 0;
    while start < n {
        let len = bank_rows.min(n - start);
        let bank = prepare(&train.narrow(0, start, len));
        let (v, i) = rows.f_matmul(&bank.tr())?.f_topk(k.min(len), 1, true, true)?;
        let i = i + start;
        best = Some(match best {
            None => (v, i),
            Some((bv, bi)) => {
                let (cv, ci) = (Tensor::cat(&[bv, v], 1), Tensor::cat(&[bi, i], 1));
                let (tv, at) = cv.f_topk(k.min(cv.size()[1]), 1, true, true)?;
                (tv, ci.f_gather(1, &at, false)?)
            }
        });
        start += len;
    }
    best.ok_or_else(|| TchError::Shape("an empty memory bank".into()))
}

/// Classifies every row of `test` `[m, d]` by its neighbours among `train` `[n, d]`
/// (labels `train_labels` `[n]` in `0..classes`) and scores it against `test_labels` `[m]`,
/// on `device` (the features may be anywhere, over files too: read by blocks). `cfg.k`
/// must be 1..=n.
pub fn knn_classify(
    train: &Tensor,
    train_labels: &Tensor,
    test: &Tensor,
    test_labels: &Tensor,
    classes: i64,
    cfg: &KnnConfig,
    device: Device,
) -> Result<KnnScores, TchError> {
    tch::no_grad(|| {
        let (n, d) = (train.size()[0], train.size().get(1).copied().unwrap_or(1));
        if !(1..=n).contains(&cfg.k) {
            return Err(TchError::Shape(format!(
                "k = {} neighbours among the memory bank's {n} rows",
                cfg.k
            )));
        }
        // Identity unless standardising: (x - mean) / std with the bank's statistics.
        let stats = cfg.standardize.then(|| Standardize::of(train, device));
        let prepare = |x: &Tensor| {
            let x = x.to_device(device).to_kind(Kind::Float);
            unit_rows(&match &stats {
                Some(s) => s.apply(&x),
                None => x,
            })
        };
        let bank_rows = cfg
            .bank_rows
            .unwrap_or(if n * d * 4 <= BANK_BYTES { n } else { BANK_BYTES / (4 * d) })
            .clamp(1, n);
        let whole = (bank_rows == n).then(|| prepare(train));
        let m = test.size()[0];
        let block = cfg.block_rows.unwrap_or(BLOCK_ELEMENTS / bank_rows).max(1);
        let train_labels = train_labels.to_device(device).to_kind(Kind::Int64);
        let mut predictions = Vec::with_capacity(m as usize);
        let (mut correct1, mut correct5) = (0i64, 0i64);
        let top5 = classes > 5;
        let mut start = 0;
        while start < m {
            let len = block.min(m - start);
            let rows = prepare(&test.narrow(0, start, len)); // [b, d]
            let truth = test_labels.narrow(0, start, len).to_device(device).to_kind(Kind::Int64); // [b]
            let (top, idx) = match &whole {
                Some(bank) => rows.f_matmul(&bank.tr())?.f_topk(cfg.k, 1, true, true)?, // [b, k]
                None => nearest_in_blocks(&rows, train, bank_rows, cfg.k, &prepare)?,
            };
            let v = votes(&top, &idx, &train_labels, classes, cfg)?; // [b, classes]
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
        let a = knn_classify(&bank, &bank_labels, &test, &test_labels, 2, &raw, Device::Cpu).unwrap();
        let b = knn_classify(&bank, &bank_labels, &test, &test_labels, 2, &std, Device::Cpu).unwrap();
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
                bank_rows: None,
                standardize: false,
            };
            let whole = knn_classify(&xt, &yt, &xq, &yq, classes as i64, &cfg, Device::Cpu).unwrap();
            assert_eq!(whole.predictions, expected, "k = {k}, T = {t}");
            let right = expected.iter().zip(&test_y).filter(|(p, y)| p == y).count();
            assert_eq!(whole.top1, right as f64 / test.len() as f64);
            // Above chance (1/7) by far, below perfect: the test is not trivial.
            assert!(whole.top1 > 0.5 && whole.top1 < 1.0, "top-1 {}", whole.top1);
            let top5 = whole.top5.expect("7 classes have a top-5");
            assert!(top5 >= whole.top1);
            // Test rows and memory-bank rows in blocks of any size (a bank block smaller
            // than k too): the same predictions and scores.
            for block in [1, 7, 100] {
                for bank in [None, Some(1), Some(13), Some(299)] {
                    let cfg = KnnConfig {
                        block_rows: Some(block),
                        bank_rows: bank,
                        ..cfg.clone()
                    };
                    let blocked = knn_classify(&xt, &yt, &xq, &yq, classes as i64, &cfg, Device::Cpu).unwrap();
                    assert_eq!(blocked, whole, "block of {block} rows, bank blocks {bank:?}, k = {k}");
                }
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
                bank_rows: None,
                standardize: false,
            };
            knn_classify(&train, &labels, &test, &truth, 2, &cfg, Device::Cpu).unwrap()
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
        assert!(knn_classify(&train, &labels, &test, &truth, 2, &cfg, Device::Cpu).is_err());
    }
}
