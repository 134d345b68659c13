//! Result tables of an experiment, read only from the store.
mod results;

pub use results::{collect_rows, write_results, ResultRow};
