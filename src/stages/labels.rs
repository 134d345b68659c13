//! Labels where two splits meet: a split scored against a classifier (or a memory bank)
//! fitted on another split has its labels mapped into the training split's classes *by
//! name*, never by position; a test class the training split lacks is refused (at planning
//! where the splits are readable, else when the stage runs).
use super::{ParamError, Upstream};
#[cfg(feature = "torch")]
use {super::StageError, crate::data::Source};

/// For each class of the evaluated split (`test`), the index of the class of the same name
/// in the training split (`train`); `None` when both lists are the same (labels agree as
/// they are). A test class absent from the training split is an error naming both splits
/// and both lists; a training class absent from the test split is fine (never the truth).
pub fn class_map(train: &str, train_classes: &[String], test: &str, test_classes: &[String]) -> Result<Option<Vec<usize>>, String> {
    if train_classes == test_classes {
        return Ok(None);
    }
    let missing: Vec<&str> = test_classes
        .iter()
        .filter(|c| !train_classes.contains(c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the test split `{test}` has classes [{}], the train split `{train}` has [{}]: {} not among the training \
             classes (labels are matched by class name)",
            test_classes.join(", "),
            train_classes.join(", "),
            missing.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ") + if missing.len() == 1 { " is" } else { " are" },
        ));
    }
    Ok(Some(
        test_classes
            .iter()
            .map(|c| train_classes.iter().position(|t| t == c).unwrap_or(0))
            .collect(),
    ))
}

/// [`class_map`] of two `dataset:split`s at planning, when both can be read here (`None`
/// otherwise: the stage then maps, or refuses, when it runs). The error is on `test_key`.
pub fn plan_class_map(upstream: &dyn Upstream, train: &str, test: &str, test_key: &'static str) -> Result<Option<Vec<usize>>, ParamError> {
    let (Some(tr), Some(te)) = (upstream.split(train), upstream.split(test)) else {
        return Ok(None);
    };
    class_map(train, &tr.classes, test, &te.classes).map_err(|m| ParamError::new(test_key, m))
}

#[cfg(feature = "torch")]
/// The true label of every image of `source`, mapped by name into `into` (the training
/// split's `dataset:split` and classes) when given; an unlabeled image or a class `into`
/// lacks is an input error.
pub fn true_labels(source: &dyn Source, name: &str, into: Option<(&str, &[String])>) -> Result<Vec<i64>, StageError> {
    let map = match into {
        Some((train, classes)) => class_map(train, classes, name, source.classes()).map_err(StageError::Input)?,
        None => None,
    };
    (0..source.len())
        .map(|i| {
            let l = source
                .label(i)
                .ok_or_else(|| StageError::Input(format!("{}: no true label (the split is unlabeled)", source.describe(i))))?;
            Ok(match &map {
                Some(m) => m.get(l).copied().unwrap_or(l) as i64,
                None => l as i64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_by_name_and_refuses_unknown_classes() {
        let (cd, bcd) = (names(&["cat", "dog"]), names(&["bird", "cat", "dog"]));
        assert_eq!(class_map("d:train", &cd, "d:test", &cd), Ok(None));
        // test {cat, dog} against train {bird, cat, dog}: cat is 1, dog is 2 (not 0 and 1).
        assert_eq!(class_map("d:train", &bcd, "d:test", &cd), Ok(Some(vec![1, 2])));
        let e = class_map("d:train", &cd, "d:test", &bcd).unwrap_err();
        assert_eq!(
            e,
            "the test split `d:test` has classes [bird, cat, dog], the train split `d:train` has [cat, dog]: `bird` is \
             not among the training classes (labels are matched by class name)"
        );
        let e = class_map("d:train", &cd, "d:test", &names(&["cat", "zebra"])).unwrap_err();
        assert!(e.contains("`zebra` is not among"), "{e}");
        let e = class_map("d:train", &cd, "d:test", &names(&["emu", "zebra"])).unwrap_err();
        assert!(e.contains("`emu`, `zebra` are not among"), "{e}");
    }
}
