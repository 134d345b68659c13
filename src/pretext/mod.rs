//! Pretext tasks: Jigsaw permutation sets, Jigsaw and Jigsaw++ samples, the context-free
//! network, rotation prediction, and contrastive instance discrimination (views, projection
//! head, NT-Xent).
#[cfg(feature = "torch")]
pub mod cfn;
#[cfg(feature = "torch")]
pub mod contrastive;
#[cfg(feature = "torch")]
pub mod jigsaw;
pub mod permutations;
#[cfg(feature = "torch")]
pub mod rotation;
pub mod views;
