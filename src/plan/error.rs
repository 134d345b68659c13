//! Planning errors: what is wrong with an experiment as a graph of stages, each naming the
//! file, line and key (through [`ConfigError`]), and several at once when a file has several.
use crate::config::ConfigError;
use crate::data::DataError;

/// Most errors one planning pass reports; the rest are counted.
pub const MAX_REPORTED: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A dataset that cannot be read to fingerprint it.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Several errors found in one pass over the file.
    #[error("{}", render_many(errors, *more))]
    Many { errors: Vec<PlanError>, more: usize },
    #[error("the experiment has no variants")]
    NoVariants,
}

impl PlanError {
    /// One error as itself, several as [`PlanError::Many`] (at most [`MAX_REPORTED`]).
    pub fn from_list(mut errors: Vec<PlanError>) -> Option<PlanError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            n => {
                let more = n.saturating_sub(MAX_REPORTED);
                errors.truncate(MAX_REPORTED);
                Some(PlanError::Many { errors, more })
            }
        }
    }

    /// The errors this one stands for: those of [`PlanError::Many`] (its uncounted rest
    /// is lost), else itself.
    pub fn into_list(self) -> Vec<PlanError> {
        match self {
            PlanError::Many { errors, .. } => errors,
            e => vec![e],
        }
    }

    /// 2: every planning error is bad configuration or input.
    pub fn exit_code(&self) -> u8 {
        2
    }
}

fn render_many(errors: &[PlanError], more: usize) -> String {
    let mut s = format!("{} errors in the experiment:", errors.len() + more);
    for e in errors {
        s.push_str(&format!("\n\n{e}"));
    }
    if more > 0 {
        s.push_str(&format!("\n\n... and {more} more"));
    }
    s
}

/// Collects errors of one planning phase; `finish` fails when any was found.
#[derive(Default)]
pub(super) struct Errors(Vec<PlanError>);

impl Errors {
    pub fn push(&mut self, e: impl Into<PlanError>) {
        self.0.push(e.into());
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Keeps the value of `r`, recording its error.
    pub fn take<T>(&mut self, r: Result<T, impl Into<PlanError>>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(e);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), PlanError> {
        match PlanError::from_list(self.0) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}
