//! Pretext tasks: Jigsaw permutation sets, Jigsaw and Jigsaw++ samples, the context-free
//! network, rotation prediction, contrastive instance discrimination (views, projection
//! head, NT-Xent), colourisation (Lab, ab bins) and inpainting, the last two through an
//! upsampling decoder.
#[cfg(feature = "torch")]
pub mod cfn;
#[cfg(feature = "torch")]
pub mod colorization;
#[cfg(feature = "torch")]
pub mod contrastive;
pub mod decoder;
#[cfg(feature = "torch")]
pub mod inpainting;
#[cfg(feature = "torch")]
pub mod jigsaw;
pub mod lab;
pub mod permutations;
#[cfg(feature = "torch")]
pub mod rotation;
pub mod views;
