//! Pretext tasks: Jigsaw permutation sets so far.
pub mod permutations;
