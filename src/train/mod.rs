//! The one training loop every training stage uses, with its optimisers, schedules,
//! batches and checkpoints.
#[cfg(feature = "torch")]
pub mod batches;
pub mod kinds;
#[cfg(feature = "torch")]
pub mod optim;
pub mod schedule;
#[cfg(feature = "torch")]
pub mod trainer;
