//! Representations: handcrafted descriptors (HOG, pixels) and networks with named layers.
pub mod alexnet;
pub mod error;
pub mod hog;
pub mod layers;
pub mod net;
pub mod pixels;
pub mod registry;
pub mod resnet;
pub mod vgg;
