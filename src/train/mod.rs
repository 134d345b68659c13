//! The one training loop every training stage uses, with its optimisers, schedules,
//! batches and checkpoints.
pub mod batches;
pub mod optim;
pub mod schedule;
pub mod trainer;
