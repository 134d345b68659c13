//! Representations: handcrafted descriptors now, networks with named layers later.
pub mod hog;
pub mod pixels;
