//! Why a network could not be built or queried: every validation failure of the model layer,
//! each naming the offending value and what would have been accepted.
use thiserror::Error;

/// A model configuration or query that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// The architecture name is not one of the supported ones.
    #[error("unknown architecture `{name}`, expected one of {valid}")]
    UnknownArch { name: String, valid: String },

    /// The channel multiplier is not a finite number greater than zero.
    #[error("width must be a finite number > 0, got {0}")]
    InvalidWidth(f64),

    /// The channel multiplier is positive but rounds some layer down to no channels at all.
    #[error(
        "width {width} leaves layer `{layer}` of {arch} with zero channels \
         ({nominal} x {width} rounds to 0); use width >= {min_width}"
    )]
    ZeroChannels {
        arch: String,
        layer: String,
        nominal: i64,
        width: f64,
        min_width: f64,
    },

    /// The number of input channels is not positive.
    #[error("in_channels must be >= 1 (3 for RGB, 1 for grayscale), got {0}")]
    InvalidInChannels(i64),

    /// The number of classifier outputs is not positive.
    #[error("a classifier needs at least 1 class, got {0}")]
    InvalidClasses(i64),

    /// The configured input is smaller than the architecture can process.
    #[error("{arch} needs images of at least {min} px per side, got {got} px")]
    ImageTooSmall { arch: String, min: i64, got: i64 },

    /// A tap (probe point) name the network does not have.
    #[error("unknown layer `{name}` for {arch}; valid layers: {valid}")]
    UnknownLayer { arch: String, name: String, valid: String },
}
