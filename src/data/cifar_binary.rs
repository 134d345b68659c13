//! The official CIFAR-10 binary distribution (`cifar-10-batches-bin`): fixed-size records
//! of one label byte and a 32x32 image stored as three 1024-byte planes (R, G, B).
use std::fs;
use std::path::{Path, PathBuf};

use super::{DataError, Image, Source};

pub const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
/// Bytes per record: one label byte and three colour planes.
pub const RECORD: usize = 1 + 3 * PLANE;
/// Optional class names, one a line.
pub const META_FILE: &str = "batches.meta.txt";
pub const DEFAULT_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
const SPLITS: [(&str, &[&str]); 2] = [
    (
        "train",
        &[
            "data_batch_1.bin",
            "data_batch_2.bin",
            "data_batch_3.bin",
            "data_batch_4.bin",
            "data_batch_5.bin",
        ],
    ),
    ("test", &["test_batch.bin"]),
];

/// The split names, in order: `train`, `test`.
pub fn split_names() -> impl Iterator<Item = &'static str> {
    SPLITS.iter().map(|(name, _)| *name)
}

/// The batch files of `split`, in order; `UnknownSplit` for anything but train and test.
pub fn split_files(dataset: &str, split: &str) -> Result<&'static [&'static str], DataError> {
    SPLITS
        .iter()
        .find(|(name, _)| *name == split)
        .map(|(_, files)| *files)
        .ok_or_else(|| DataError::UnknownSplit {
            dataset: dataset.to_string(),
            split: split.to_string(),
            available: split_names().collect::<Vec<_>>().join(", "),
        })
}

/// One split, held in memory (about 150 MB for train).
pub struct Cifar10Binary {
    dataset: String,
    split: String,
    classes: Vec<String>,
    /// (file, records) per batch file, in order.
    batches: Vec<(PathBuf, Vec<u8>)>,
    len: usize,
}

impl Cifar10Binary {
    pub fn open(dataset: &str, root: &Path, split: &str) -> Result<Self, DataError> {
        let names = split_files(dataset, split)?;
        let classes = read_classes(root)?;
        let mut batches = Vec::with_capacity(names.len());
        let mut len = 0;
        for name in names {
            let path = root.join(name);
            let bytes = fs::read(&path).map_err(|e| DataError::Io {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if bytes.is_empty() || bytes.len() % RECORD != 0 {
                return Err(DataError::Io {
                    path,
                    message: format!(
                        "size {} bytes is not a positive multiple of the {RECORD}-byte \
                         CIFAR-10 record",
                        bytes.len()
                    ),
                });
            }
            if let Some(k) = bytes.chunks_exact(RECORD).position(|r| usize::from(r[0]) >= classes.len()) {
                return Err(DataError::Invalid {
                    dataset: dataset.to_string(),
                    message: format!(
                        "{}: record {k} has label {} but there are {} classes",
                        path.display(),
                        bytes[k * RECORD],
                        classes.len()
                    ),
                });
            }
            len += bytes.len() / RECORD;
            batches.push((path, bytes));
        }
        Ok(Cifar10Binary {
            dataset: dataset.to_string(),
            split: split.to_string(),
            classes,
            batches,
            len,
        })
    }

    /// The batch file and record index within it of image `i`.
    fn locate(&self, mut i: usize) -> Option<(&Path, &[u8], usize)> {
        for (path, bytes) in &self.batches {
            let n = bytes.len() / RECORD;
            if i < n {
                return Some((path, &bytes[i * RECORD..(i + 1) * RECORD], i));
            }
            i -= n;
        }
        None
    }
}

/// Class names from `batches.meta.txt` (non-empty trimmed lines), else the standard ten.
fn read_classes(root: &Path) -> Result<Vec<String>, DataError> {
    let path = root.join(META_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DEFAULT_CLASSES.iter().map(|s| s.to_string()).collect()),
        Err(e) => {
            return Err(DataError::Io {
                path,
                message: e.to_string(),
            })
        }
    };
    let classes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    if classes.is_empty() {
        return Err(DataError::Io {
            path,
            message: "no class names in the file".to_string(),
        });
    }
    Ok(classes)
}

impl Source for Cifar10Binary {
    fn len(&self) -> usize {
        self.len
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, i: usize) -> Option<usize> {
        self.locate(i).map(|(_, record, _)| usize::from(record[0]))
    }

    fn load(&self, i: usize) -> Result<Image, DataError> {
        let (_, record, _) = self.locate(i).ok_or_else(|| DataError::Invalid {
            dataset: self.dataset.clone(),
            message: format!("split `{}` has {} images, no image {i}", self.split, self.len),
        })?;
        let planes = &record[1..];
        let mut img = Image::new(SIDE, SIDE);
        for (p, px) in img.rgb.chunks_exact_mut(3).enumerate() {
            px[0] = planes[p];
            px[1] = planes[PLANE + p];
            px[2] = planes[2 * PLANE + p];
        }
        Ok(img)
    }

    fn describe(&self, i: usize) -> String {
        match self.locate(i) {
            Some((path, _, k)) => format!("{}#{k}", path.display()),
            None => format!("cifar10-binary:{}:<no image {i}>", self.split),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record whose pixel (x, y) is (label, x, y) in R, G, B.
    fn record(label: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(label, PLANE));
        r.extend((0..PLANE).map(|p| (p % SIDE) as u8));
        r.extend((0..PLANE).map(|p| (p / SIDE) as u8));
        r
    }

    /// Writes a fake dataset: `per_batch` records in each train batch and test batch.
    pub(crate) fn write_fake(root: &Path, per_batch: usize) {
        for name in SPLITS.iter().flat_map(|(_, f)| f.iter()) {
            let bytes: Vec<u8> = (0..per_batch).flat_map(|k| record((k % 10) as u8)).collect();
            fs::write(root.join(name), bytes).unwrap();
        }
    }

    #[test]
    fn reads_records_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), 3);
        let train = Cifar10Binary::open("c", dir.path(), "train").unwrap();
        assert_eq!(train.len(), 15);
        assert_eq!(train.classes()[9], "truck");
        assert_eq!(train.label(4), Some(1));
        assert_eq!(train.label(15), None);
        let img = train.load(5).unwrap();
        assert_eq!((img.width, img.height), (32, 32));
        assert_eq!(img.pixel(7, 20), [2, 7, 20]);
        assert!(train.describe(5).ends_with("data_batch_2.bin#2"));
        assert!(train.load(15).is_err());
        assert_eq!(Cifar10Binary::open("c", dir.path(), "test").unwrap().len(), 3);
    }

    #[test]
    fn class_names_from_meta() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), 1);
        let names: String = (0..10).map(|k| format!("c{k}\n")).collect();
        fs::write(dir.path().join(META_FILE), names + "\n\n").unwrap();
        let test = Cifar10Binary::open("c", dir.path(), "test").unwrap();
        assert_eq!(test.classes().len(), 10);
        assert_eq!(test.classes()[3], "c3");

        // Too few names for the labels in use.
        fs::write(dir.path().join(META_FILE), "a\n").unwrap();
        write_fake(dir.path(), 3);
        let err = Cifar10Binary::open("c", dir.path(), "test").err().unwrap();
        assert!(err.to_string().contains("test_batch.bin"), "{err}");
    }

    #[test]
    fn bad_sizes_and_missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_fake(dir.path(), 2);
        fs::write(dir.path().join("data_batch_3.bin"), vec![0u8; RECORD + 1]).unwrap();
        let err = Cifar10Binary::open("c", dir.path(), "train").err().unwrap();
        assert!(err.to_string().contains("data_batch_3.bin"), "{err}");

        fs::write(dir.path().join("test_batch.bin"), b"").unwrap();
        let err = Cifar10Binary::open("c", dir.path(), "test").err().unwrap();
        assert!(err.to_string().contains("test_batch.bin"), "{err}");

        fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
        let err = Cifar10Binary::open("c", dir.path(), "train").err().unwrap();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
        assert!(err.to_string().contains("data_batch_3.bin"), "{err}");
    }

    #[test]
    fn unknown_split() {
        let dir = tempfile::tempdir().unwrap();
        match Cifar10Binary::open("c", dir.path(), "val") {
            Err(DataError::UnknownSplit { available, .. }) => assert_eq!(available, "train, test"),
            other => panic!("{:?}", other.err()),
        }
    }
}
