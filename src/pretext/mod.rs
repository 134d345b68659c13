//! Pretext tasks: Jigsaw permutation sets, Jigsaw and Jigsaw++ samples, the context-free
//! network, and rotation prediction.
#[cfg(feature = "torch")]
pub mod cfn;
#[cfg(feature = "torch")]
pub mod jigsaw;
pub mod permutations;
#[cfg(feature = "torch")]
pub mod rotation;
