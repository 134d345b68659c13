//! Representations: handcrafted descriptors (HOG, pixels) and networks with named layers.
//!
//! Imports point one way: `arch` (what a network is) <- `layers` (the building blocks) <-
//! `alexnet`, `vgg`, `resnet` (each a layer description) <- `blueprints` (which description
//! an architecture has; checks that need it) <- `net` (the built network and its taps).
pub mod alexnet;
pub mod arch;
pub mod blueprints;
pub mod error;
pub mod hog;
pub mod layers;
#[cfg(feature = "torch")]
pub mod net;
pub mod pixels;
pub mod resnet;
pub mod vgg;

pub use arch::{default_image_size, default_pooled_dim, pooled_side, Arch, NetConfig, PROBE_LAYERS};
pub use blueprints::check_layer_name;
pub use error::ModelError;
#[cfg(feature = "torch")]
pub use net::Network;
