//! The macro that turns the one list of stage kinds (in `stages/mod.rs`) into the closed
//! enums `StageKind` and `Params` and every dispatch over them, so the compiler checks that
//! every kind is handled and a new kind is one file plus one line.
/// What a stage produces, i.e. what another stage may consume from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Features,
    Centroids,
    Labels,
    Metrics,
    Model,
}

impl OutputKind {
    pub fn describe(self) -> &'static str {
        match self {
            OutputKind::Features => "a features stage",
            OutputKind::Centroids => "a kmeans stage",
            OutputKind::Labels => "an assign stage",
            OutputKind::Metrics => "a metrics stage",
            OutputKind::Model => "a model stage (init, pretext or train)",
        }
    }
}

/// `stage_kinds! { Variant => module::ParamsType, ... }` re-exports each kind's parameter
/// type and generates `StageKind` (with `ALL`, `name`, `version`, `output`, `parse`) and
/// `Params` (one variant per kind, decoding and dispatching every [`super::Stage`] method).
/// The modules themselves are declared beside the list (`mod features;`), not by the macro,
/// so that `cargo fmt` reaches their files.
macro_rules! stage_kinds {
    ($($variant:ident => $module:ident::$params:ident,)+) => {
        $(
            pub use $module::$params;
        )+

        /// A stage kind; its name and version come from its [`Stage`] implementation.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum StageKind {
            $($variant,)+
        }

        impl StageKind {
            pub const ALL: &'static [StageKind] = &[$(StageKind::$variant,)+];

            pub fn name(self) -> &'static str {
                match self {
                    $(StageKind::$variant => <$params as Stage>::NAME,)+
                }
            }

            /// Part of every key: see [`Stage::VERSION`].
            pub fn version(self) -> u32 {
                match self {
                    $(StageKind::$variant => <$params as Stage>::VERSION,)+
                }
            }

            /// The metrics of its result rows: see [`Stage::METRICS`].
            pub fn metrics(self) -> &'static [&'static str] {
                match self {
                    $(StageKind::$variant => <$params as Stage>::METRICS,)+
                }
            }

            pub fn output(self) -> OutputKind {
                match self {
                    $(StageKind::$variant => <$params as Stage>::OUTPUT,)+
                }
            }

            /// Every kind's name: the store's folders.
            pub fn names() -> Vec<&'static str> {
                StageKind::ALL.iter().map(|k| k.name()).collect()
            }

            pub fn parse(s: &str) -> Option<StageKind> {
                StageKind::ALL.iter().copied().find(|k| k.name() == s)
            }
        }

        /// The validated parameters of one stage instance.
        #[derive(Clone, Debug)]
        pub enum Params {
            $($variant($params),)+
        }

        impl Params {
            /// Decodes a stage table (without `kind`); `prefix` is its key path.
            pub fn decode(kind: StageKind, table: &Node, prefix: &str) -> Result<Params, ConfigError> {
                Ok(match kind {
                    $(StageKind::$variant => Params::$variant(<$params as Stage>::decode(table, prefix)?),)+
                })
            }

            pub fn kind(&self) -> StageKind {
                match self {
                    $(Params::$variant(_) => StageKind::$variant,)+
                }
            }

            /// The parameters as JSON (input references included).
            pub fn to_json(&self) -> serde_json::Value {
                match self {
                    $(Params::$variant(p) => serde_json::to_value(p).unwrap_or(serde_json::Value::Null),)+
                }
            }

            /// The metrics this instance reports: see [`Stage::metrics`].
            pub fn metrics(&self) -> Vec<&'static str> {
                match self {
                    $(Params::$variant(p) => p.metrics(),)+
                }
            }

            pub fn is_stochastic(&self) -> bool {
                match self {
                    $(Params::$variant(p) => p.stochastic(),)+
                }
            }

            pub fn is_device_dependent(&self) -> bool {
                match self {
                    $(Params::$variant(p) => p.device_dependent(),)+
                }
            }

            pub fn inputs(&self) -> Vec<InputSpec> {
                match self {
                    $(Params::$variant(p) => p.inputs(),)+
                }
            }

            pub fn networks(&self) -> Networks<'_> {
                match self {
                    $(Params::$variant(p) => p.networks(),)+
                }
            }

            pub fn rows(&self) -> Rows<'_> {
                match self {
                    $(Params::$variant(p) => p.rows(),)+
                }
            }

            pub fn resolve(&mut self, upstream: &dyn Upstream) -> Result<(), ParamError> {
                match self {
                    $(Params::$variant(p) => p.resolve(upstream),)+
                }
            }

            #[cfg(feature = "torch")]
            pub fn run(&self, ctx: &RunCtx) -> Result<Outcome, StageError> {
                match self {
                    $(Params::$variant(p) => p.run(ctx),)+
                }
            }
        }

        impl crate::store::KindName for StageKind {
            fn kind_name(&self) -> &str {
                self.name()
            }
        }

        impl ::std::fmt::Display for StageKind {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use stage_kinds;
