//! Subset datasets: splits drawn from the splits of another dataset by a seeded shuffle,
//! so that an experiment can use a fixed sample of a large dataset (10,000 of CIFAR-10's
//! training images, say) and disjoint parts of one split (a pretext pool and a probe set).
//!
//! The order is a Fisher-Yates shuffle driven by ChaCha8 with the subset's seed, written
//! out here (not `rand`'s `shuffle`) so that the images a subset holds never change with a
//! dependency update.
use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{DataError, Image, Source, SubsetSplit};

/// Version of the subset order; part of a subset split's fingerprint.
pub const SUBSET_VERSION: u32 = 1;

/// The positions in the parent split that a subset split holds, in subset order.
pub fn subset_indices(dataset: &str, name: &str, parent_len: usize, seed: u64, part: &SubsetSplit) -> Result<Vec<usize>, DataError> {
    let end = part
        .skip
        .checked_add(part.take)
        .filter(|&end| end <= parent_len)
        .ok_or_else(|| DataError::Invalid {
            dataset: dataset.to_string(),
            message: format!(
                "split `{name}` takes images {}..{} of split `{}`, which has {parent_len}",
                part.skip,
                part.skip.saturating_add(part.take),
                part.split
            ),
        })?;
    Ok(shuffled(parent_len, seed)[part.skip..end].to_vec())
}

/// 0..n in the seeded order.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // An index in 0..=i from the high bits of a 64x64-bit product (bias below 2^-40
        // for any split under a billion images).
        let j = ((rng.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// A split of a subset dataset: the parent split seen through `indices`.
pub struct Subset {
    parent: Box<dyn Source>,
    indices: Vec<usize>,
}

impl Subset {
    pub fn new(parent: Box<dyn Source>, indices: Vec<usize>) -> Self {
        Subset { parent, indices }
    }
}

impl Source for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn classes(&self) -> &[String] {
        self.parent.classes()
    }
    fn label(&self, i: usize) -> Option<usize> {
        self.parent.label(self.indices[i])
    }
    fn load(&self, i: usize) -> Result<Image, DataError> {
        self.parent.load(self.indices[i])
    }
    fn describe(&self, i: usize) -> String {
        self.parent.describe(self.indices[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(skip: usize, take: usize) -> SubsetSplit {
        SubsetSplit {
            split: "train".to_string(),
            skip,
            take,
        }
    }

    #[test]
    fn order_is_a_fixed_permutation() {
        let order = shuffled(1000, 5);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(order, (0..1000).collect::<Vec<_>>());
        assert_eq!(order, shuffled(1000, 5));
        assert_ne!(order, shuffled(1000, 6));
        // Pinned: a change of the order would silently change every subset's images.
        assert_eq!(&shuffled(10, 0), &[6, 1, 8, 3, 2, 9, 0, 5, 4, 7]);
    }

    #[test]
    fn disjoint_ranges_are_disjoint_and_bounds_are_checked() {
        let a = subset_indices("d", "a", 100, 3, &part(0, 60)).unwrap();
        let b = subset_indices("d", "b", 100, 3, &part(60, 40)).unwrap();
        assert!(a.iter().all(|i| !b.contains(i)));
        let err = subset_indices("d", "c", 100, 3, &part(60, 41)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dataset `d`: split `c` takes images 60..101 of split `train`, which has 100"
        );
        assert!(subset_indices("d", "c", 100, 3, &part(usize::MAX, 2)).is_err());
    }
}
