//! Where every random number comes from: one derivation, from the seed an experiment file
//! states (`seed = 0`, a `seeds` list, or a stage's own `seed`).
//!
//! - A stochastic stage instance's **seed** is the first 8 bytes (little-endian) of its key,
//!   a SHA-256 digest over everything it is keyed on, the stated seed included
//!   ([`instance`]): two instances that differ in anything draw unrelated numbers, and an
//!   instance draws the same numbers wherever and whenever it runs.
//! - Everything a stage draws is a named **stream** of that seed ([`stream`]): libtorch's
//!   generator (seeded once, by the runner, before the stage starts), the order of an
//!   epoch's batches, each sample's augmentation ([`item`] of an epoch's stream), the
//!   held-out samples of a task.
//! - What must be the **same across stages** is drawn from the stated seed instead, with the
//!   identity of what it is about, never from an instance's seed: the images a pretext stage
//!   holds out of a split ([`held_out`]: the split's fingerprint, so every stage on that
//!   split with that seed holds out the same images, nested by share), and a generated
//!   permutation set (`PermutationSet::generate(count, min_hamming, seed)`, the same set as
//!   `ktlab perms --seed`).
use sha2::{Digest, Sha256};

/// The seed of a stage instance whose key digest is `digest`.
pub fn instance(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// The seed of the stream `name` of `seed`: the first 8 bytes of SHA-256 over the seed's 8
/// little-endian bytes and the name.
pub fn stream(seed: u64, name: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(name.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// The seed of item `index` of a stream (an epoch, a batch, a sample): SplitMix64's finaliser
/// over the stream and each index in turn, cheap enough for every sample.
pub fn item(stream: u64, index: &[u64]) -> u64 {
    index
        .iter()
        .fold(mix(stream), |acc, &i| mix(acc ^ mix(i.wrapping_add(0x9E37_79B9_7F4A_7C15))))
}

/// The seed the images a stage holds out of a split are drawn with: the stated seed and the
/// split's content fingerprint, nothing of the stage.
pub fn held_out(stated: u64, fingerprint: &str) -> u64 {
    stream(stated, &format!("held-out images of {fingerprint}"))
}

/// libtorch's generator takes a non-negative `i64`.
pub fn torch(seed: u64) -> i64 {
    (seed & i64::MAX as u64) as i64
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_items_differ_by_name_and_index_and_are_fixed() {
        assert_ne!(stream(0, "a"), stream(0, "b"));
        assert_ne!(stream(0, "a"), stream(1, "a"));
        assert_eq!(stream(7, "a"), stream(7, "a"));
        let s = stream(0, "epochs");
        let items: std::collections::HashSet<u64> = (0..1000u64).flat_map(|e| (0..50u64).map(move |j| item(s, &[e, j]))).collect();
        assert_eq!(items.len(), 50_000);
        assert_ne!(item(s, &[1, 2]), item(s, &[2, 1]));
        // Pinned: a change here moves every stochastic result.
        assert_eq!(stream(0, "libtorch"), 0xe71d_60e1_4581_b965);
    }

    #[test]
    fn held_out_seeds_depend_on_the_stated_seed_and_the_split_only() {
        assert_eq!(held_out(3, "fp1"), held_out(3, "fp1"));
        assert_ne!(held_out(3, "fp1"), held_out(4, "fp1"));
        assert_ne!(held_out(3, "fp1"), held_out(3, "fp2"));
    }

    #[test]
    fn an_instance_seed_takes_all_64_bits_of_the_digest() {
        let mut d = [0u8; 32];
        d[7] = 0x80;
        d[0] = 1;
        assert_eq!(instance(&d), 0x8000_0000_0000_0001);
    }
}
