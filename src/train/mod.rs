//! The one training loop every training stage uses, with its optimisers, schedules,
//! batches, checkpoints and mixed precision, and the TensorBoard event files it writes.
#[cfg(feature = "torch")]
pub mod amp;
#[cfg(feature = "torch")]
pub mod batches;
pub mod kinds;
#[cfg(feature = "torch")]
pub mod objective;
#[cfg(feature = "torch")]
pub mod optim;
pub mod schedule;
pub mod tensorboard;
#[cfg(feature = "torch")]
pub mod trainer;
