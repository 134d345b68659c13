//! Pretext tasks: Jigsaw permutation sets, Jigsaw and Jigsaw++ samples, the context-free
//! network, and rotation prediction.
pub mod cfn;
pub mod jigsaw;
pub mod permutations;
pub mod rotation;
