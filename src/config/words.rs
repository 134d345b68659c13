//! serde's messages in words a user of a TOML file knows: "a whole number", not `usize`.
//!
//! serde reports `invalid type: floating point `2.5`, expected usize`. A literal scalar that
//! was found reads best as itself (`expected a whole number, found 2.5`); a string or a
//! compound value keeps serde's shape with the expected type in plain words
//! (`invalid type: string "four", expected a whole number`). Messages that already speak
//! plainly (custom ones, "expected a string") pass through unchanged.

/// Rewrites one serde error message (see the module documentation).
pub(crate) fn humanize(message: &str) -> String {
    let (kind, rest) = if let Some(rest) = message.strip_prefix("invalid type: ") {
        (Kind::Type, rest)
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        (Kind::Value, rest)
    } else {
        return message.to_string();
    };
    let Some((found, expected)) = rest.rsplit_once(", expected ") else {
        return message.to_string();
    };
    let literal = literal(found);
    let Some(expected) = expected_words(expected, kind, literal.as_deref()) else {
        return message.to_string();
    };
    match literal {
        Some(value) => format!("expected {expected}, found {value}"),
        None => format!("invalid {}: {found}, expected {expected}", kind.word()),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Type,
    Value,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Type => "type",
            Kind::Value => "value",
        }
    }
}

/// The value of a found scalar as it is written in TOML (`2.5`, `-4`, `true`), if it is one.
fn literal(found: &str) -> Option<String> {
    let quoted = |prefix: &str| {
        found
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('`'))
            .and_then(|r| r.strip_suffix('`'))
            .map(str::to_string)
    };
    quoted("floating point ")
        .or_else(|| quoted("integer "))
        .or_else(|| quoted("boolean "))
}

/// Plain words for serde's name of an expected type; `None` where serde's words are
/// already plain (then the message is left alone).
fn expected_words(expected: &str, kind: Kind, literal: Option<&str>) -> Option<String> {
    let unsigned = matches!(expected, "usize" | "u8" | "u16" | "u32" | "u64" | "u128");
    let signed = matches!(expected, "isize" | "i8" | "i16" | "i32" | "i64" | "i128");
    let words = if unsigned {
        // A negative whole number is a wrong value, not a wrong type.
        let negative = literal.is_some_and(|v| v.starts_with('-') && v.parse::<i128>().is_ok());
        if matches!(kind, Kind::Value) && negative {
            "a non-negative whole number".to_string()
        } else if matches!(kind, Kind::Value) {
            let max = match expected {
                "u8" => Some(u8::MAX as u128),
                "u16" => Some(u16::MAX as u128),
                "u32" => Some(u32::MAX as u128),
                _ => None,
            };
            match max {
                Some(m) => format!("a whole number from 0 to {m}"),
                None => "a non-negative whole number".to_string(),
            }
        } else {
            "a whole number".to_string()
        }
    } else if signed {
        "a whole number".to_string()
    } else {
        match expected {
            "f32" | "f64" => "a number",
            "a boolean" => "true or false",
            "a borrowed string" => "a string",
            "path string" => "a path (a string)",
            "a sequence" => "an array",
            "a map" => "a table",
            s if s.starts_with("struct ") || s.starts_with("a map ") => "a table",
            s if s.starts_with("a sequence ") || s.starts_with("tuple ") => "an array",
            // Plain already, or a custom message: only a found literal needs rewording.
            s if literal.is_some() && !s.is_empty() => return Some(s.to_string()),
            _ => return None,
        }
        .to_string()
    };
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::humanize;

    #[test]
    fn rust_type_words_become_plain_words() {
        let cases = [
            (
                "invalid type: floating point `2.5`, expected usize",
                "expected a whole number, found 2.5",
            ),
            (
                "invalid value: integer `-4`, expected usize",
                "expected a non-negative whole number, found -4",
            ),
            (
                "invalid value: integer `-4`, expected u64",
                "expected a non-negative whole number, found -4",
            ),
            (
                "invalid value: integer `5000000000`, expected u32",
                "expected a whole number from 0 to 4294967295, found 5000000000",
            ),
            (
                "invalid type: floating point `0.5`, expected i64",
                "expected a whole number, found 0.5",
            ),
            ("invalid type: boolean `true`, expected f64", "expected a number, found true"),
            ("invalid type: integer `1`, expected a boolean", "expected true or false, found 1"),
            ("invalid type: integer `4`, expected a string", "expected a string, found 4"),
            (
                "invalid type: string \"four\", expected usize",
                "invalid type: string \"four\", expected a whole number",
            ),
            (
                "invalid type: string \"conv1\", expected a sequence",
                "invalid type: string \"conv1\", expected an array",
            ),
            ("invalid type: integer `3`, expected struct Resources", "expected a table, found 3"),
            ("invalid type: sequence, expected f64", "invalid type: sequence, expected a number"),
        ];
        for (serde, plain) in cases {
            assert_eq!(humanize(serde), plain, "{serde}");
        }
    }

    #[test]
    fn plain_and_custom_messages_pass_through() {
        for m in [
            "invalid type: sequence, expected a string",
            "unknown variant `sgdd`, expected `sgd` or `adam`",
            "expected a positive learning rate, found -0.1",
            "missing field `k`",
        ] {
            assert_eq!(humanize(m), m);
        }
    }
}
