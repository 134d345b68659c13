//! `ktlab perms`: a max-min-Hamming permutation set, written as `permutations_<N>.bin`.
use std::path::Path;
use std::process::ExitCode;

use crate::pretext::permutations::PermutationSet;
use crate::Error;

pub fn perms(count: usize, min_hamming: usize, seed: u64, out: &Path) -> Result<ExitCode, Error> {
    let set = PermutationSet::generate(count, min_hamming, seed)?;
    set.write_bin(out)?;
    println!(
        "{} permutations, minimum Hamming distance {}, written to {}",
        set.len(),
        set.min_hamming(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
