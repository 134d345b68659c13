//! Closed sets of named values (optimizer, schedule, k-means init, pretext task): one macro
//! declares the enum with its names, and reading a name that is not among them says
//! "unknown optimizer `sgdd`, expected one of `sgd`, `adam`; did you mean `sgd`?".

#[doc(hidden)]
pub use serde as __serde;

/// A closed set of values, each with the name a configuration writes.
pub trait Choice: Sized + Copy + 'static {
    /// What a value names, for messages ("optimizer").
    const WHAT: &'static str;
    /// Every value, in a stable order.
    const ALL: &'static [Self];
    /// The name written in configuration files.
    fn name(self) -> &'static str;
}

/// "`a`, `b`, `c`": the names of every value of `T`.
pub fn choice_names<T: Choice>() -> String {
    T::ALL.iter().map(|c| format!("`{}`", c.name())).collect::<Vec<_>>().join(", ")
}

/// The value named `s`, or the message naming every valid name (and the nearest one).
pub fn parse_choice<T: Choice>(s: &str) -> Result<T, String> {
    if let Some(c) = T::ALL.iter().find(|c| c.name() == s) {
        return Ok(*c);
    }
    let shown: String = s.chars().take(60).flat_map(char::escape_debug).collect();
    let mut message = format!("unknown {} `{shown}`, expected one of {}", T::WHAT, choice_names::<T>());
    if let Some(hint) = super::did_you_mean(s, T::ALL.iter().map(|c| c.name())) {
        message.push_str("; ");
        message.push_str(&hint);
    }
    Err(message)
}

/// Deserializes a [`Choice`] from its name (for a hand-written `Deserialize`).
pub fn deserialize_choice<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Choice,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<T: Choice> serde::de::Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "one of {}", choice_names::<T>())
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            parse_choice(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V(std::marker::PhantomData))
}

/// Declares a [`Choice`] enum: the enum (`Clone, Copy, Debug, PartialEq, Eq, Hash`), its
/// `ALL`, `name`, `Display`, `FromStr` and serde by name.
///
/// ```ignore
/// crate::config::choice! {
///     /// How the learning rate changes over training.
///     pub enum Schedule("schedule") {
///         /// The same rate throughout.
///         Constant = "constant",
///         Cosine = "cosine",
///     }
/// }
/// assert_eq!("cosine".parse::<Schedule>(), Ok(Schedule::Cosine));
/// assert_eq!(Schedule::Constant.to_string(), "constant");
/// ```
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::config::Choice for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::config::Choice::name(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $crate::config::parse_choice(s)
            }
        }

        impl $crate::config::__serde::Serialize for $name {
            fn serialize<S: $crate::config::__serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::config::Choice::name(*self))
            }
        }

        impl<'de> $crate::config::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::config::__serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::config::deserialize_choice(d)
            }
        }
    };
}
pub(crate) use choice;

#[cfg(test)]
mod tests {
    use crate::config::{Node, SourceFile};

    crate::config::choice! {
        /// A test set.
        pub enum Optimizer("optimizer") {
            Sgd = "sgd",
            /// Adam.
            Adam = "adam",
        }
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    struct Solver {
        optimizer: Optimizer,
    }

    fn decode(value: &str) -> Result<Optimizer, String> {
        let root = Node::parse(SourceFile::inline("e.toml", format!("[s]\noptimizer = {value}\n"))).expect("TOML");
        let s = root.lookup("s").expect("s");
        s.decode::<Solver>("s").map(|s| s.optimizer).map_err(|e| e.to_string())
    }

    #[test]
    fn a_choice_reads_its_names_and_lists_them_otherwise() {
        assert_eq!(decode("\"adam\""), Ok(Optimizer::Adam));
        assert_eq!(
            decode("\"sgdd\""),
            Err("e.toml:2:13: `s.optimizer`: unknown optimizer `sgdd`, expected one of `sgd`, `adam`; did you mean `sgd`?".into())
        );
        assert_eq!(
            decode("3"),
            Err("e.toml:2:13: `s.optimizer`: expected one of `sgd`, `adam`, found 3".into())
        );
    }

    #[test]
    fn a_choice_serializes_as_its_name() {
        let s = Solver { optimizer: Optimizer::Sgd };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"optimizer":"sgd"}"#);
        assert_eq!(Optimizer::Adam.to_string(), "adam");
        assert_eq!("sgd".parse::<Optimizer>(), Ok(Optimizer::Sgd));
    }
}
