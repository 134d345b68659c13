//! What planning reads of a split without decoding an image: its class names, its size and
//! its images per class, for the checks that depend on the data (a test class the training
//! split lacks, a `k` beyond the split, a label count beyond a class, a matrix's rows).
use super::{open_split, DataError, DatasetSpec};

/// A split's classes and sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitSummary {
    /// Class names, index = label.
    pub classes: Vec<String>,
    /// Images in the split.
    pub len: usize,
    /// Images of each class (index = label); `None` when an image has no label.
    pub per_class: Option<Vec<usize>>,
}

impl SplitSummary {
    /// The smallest class that has images: (name, images); `None` for an unlabeled split.
    pub fn smallest_class(&self) -> Option<(&str, usize)> {
        let counts = self.per_class.as_ref()?;
        counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .min_by_key(|(_, &n)| n)
            .map(|(c, &n)| (self.classes[c].as_str(), n))
    }
}

/// Opens `split` of `spec` (listing an image folder, reading a CIFAR-10 binary's labels)
/// and counts its images by class; no image is decoded.
pub fn summarize(spec: &DatasetSpec, split: &str) -> Result<SplitSummary, DataError> {
    let source = open_split(spec, split)?;
    let classes = source.classes().to_vec();
    let mut per_class = Some(vec![0usize; classes.len()]);
    for i in 0..source.len() {
        match (source.label(i), per_class.as_mut()) {
            (Some(l), Some(counts)) if l < counts.len() => counts[l] += 1,
            _ => per_class = None,
        }
    }
    Ok(SplitSummary {
        classes,
        len: source.len(),
        per_class,
    })
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::data::DatasetFormat;

    #[test]
    fn counts_images_by_class() {
        let dir = tempfile::tempdir().unwrap();
        for (class, n) in [("cat", 2), ("dog", 1)] {
            for i in 0..n {
                super::super::image_folder::tests::write_image(&dir.path().join(format!("train/{class}/{i}.png")), 3, 3, 0);
            }
        }
        let spec = DatasetSpec {
            name: "f".to_string(),
            format: DatasetFormat::ImageFolder {
                root: dir.path().to_path_buf(),
            },
        };
        let s = summarize(&spec, "train").unwrap();
        assert_eq!(s.classes, ["cat", "dog"]);
        assert_eq!((s.len, s.per_class.clone()), (3, Some(vec![2, 1])));
        assert_eq!(s.smallest_class(), Some(("dog", 1)));

        let synthetic = DatasetSpec {
            name: "s".to_string(),
            format: DatasetFormat::Synthetic {
                image_size: 16,
                seed: 3,
                splits: IndexMap::from([("test".to_string(), 40)]),
            },
        };
        let s = summarize(&synthetic, "test").unwrap();
        assert_eq!((s.len, s.classes.len()), (40, 8));
        assert_eq!(s.per_class.unwrap().iter().sum::<usize>(), 40);
    }
}
