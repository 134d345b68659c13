//! Datasets stored as `<root>/<split>/<class>/<image>` JPEG/PNG files: listing a split in a
//! stable order (shared with fingerprinting) and decoding its images.
//!
//! Rules: classes are the sorted names of the non-hidden subdirectories of
//! `<root>/<split>`; a class folder is searched recursively for files ending in `.jpg`,
//! `.jpeg` or `.png` (any case); other files and hidden entries (names starting with `.`)
//! are ignored. Symbolic links are followed, and a link that loops back to one of its
//! ancestors is an error. A class folder without images is an error. Images are ordered
//! by class, then by the bytes of their path relative to the class folder.
use std::ffi::OsStr;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use walkdir::WalkDir;

use super::{DataError, Image, Source};

/// The files of one split, in dataset order.
#[derive(Clone, Debug)]
pub struct Listing {
    /// `<root>/<split>`.
    pub split_dir: PathBuf,
    pub classes: Vec<String>,
    /// Paths relative to `split_dir`, starting with the class folder.
    pub files: Vec<PathBuf>,
    /// `labels[i]` is the class index of `files[i]`.
    pub labels: Vec<u32>,
}

/// The split names: sorted non-hidden folders of `root`.
pub fn split_names(root: &Path) -> Result<Vec<String>, DataError> {
    subdirectories(root)
}

/// Lists `<root>/<split>`; see the module documentation for the rules.
pub fn list_split(dataset: &str, root: &Path, split: &str) -> Result<Listing, DataError> {
    let splits = subdirectories(root)?;
    if !splits.iter().any(|s| s == split) {
        return Err(DataError::UnknownSplit {
            dataset: dataset.to_string(),
            split: split.to_string(),
            available: if splits.is_empty() {
                format!("none: {} has no split folders", root.display())
            } else {
                splits.join(", ")
            },
        });
    }
    let split_dir = root.join(split);
    let classes = subdirectories(&split_dir)?;
    if classes.is_empty() {
        return Err(DataError::Invalid {
            dataset: dataset.to_string(),
            message: format!("{} has no class folders", split_dir.display()),
        });
    }
    let per_class: Vec<Vec<PathBuf>> = classes
        .par_iter()
        .map(|class| list_class(dataset, &split_dir, class))
        .collect::<Result<_, _>>()?;
    let total = per_class.iter().map(Vec::len).sum();
    let mut files = Vec::with_capacity(total);
    let mut labels = Vec::with_capacity(total);
    for (label, class_files) in per_class.into_iter().enumerate() {
        labels.resize(labels.len() + class_files.len(), label as u32);
        files.extend(class_files);
    }
    Ok(Listing {
        split_dir,
        classes,
        files,
        labels,
    })
}

/// Sorted names of the non-hidden directories (or links to directories) in `dir`.
fn subdirectories(dir: &Path) -> Result<Vec<String>, DataError> {
    let io_err = |path: &Path, e: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        if is_hidden(&name) {
            continue;
        }
        // Follows symbolic links; a dangling link is an error, not a silently missing class.
        if !fs::metadata(&path).map_err(|e| io_err(&path, e))?.is_dir() {
            continue;
        }
        let name = name.into_string().map_err(|_| DataError::Io {
            path: path.clone(),
            message: "folder name is not valid UTF-8".to_string(),
        })?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// The image files under `<split_dir>/<class>`, relative to `split_dir`, sorted.
fn list_class(dataset: &str, split_dir: &Path, class: &str) -> Result<Vec<PathBuf>, DataError> {
    let class_dir = split_dir.join(class);
    let mut files = Vec::new();
    let walk = WalkDir::new(&class_dir)
        .follow_links(true)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !is_hidden(e.file_name()));
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().map_or_else(|| class_dir.clone(), Path::to_path_buf);
            DataError::Io {
                path,
                message: e.to_string(),
            }
        })?;
        let ft = entry.file_type();
        if !ft.is_file() && !ft.is_dir() && is_image_name(entry.file_name()) {
            // Reading a FIFO would block forever; a device or socket is no image either.
            return Err(DataError::Io {
                path: entry.path().to_path_buf(),
                message: "not a regular file (a FIFO, socket or device)".to_string(),
            });
        }
        if ft.is_file() && is_image_name(entry.file_name()) {
            let rel = entry.path().strip_prefix(split_dir).unwrap_or(entry.path()).to_path_buf();
            files.push(rel);
        }
    }
    if files.is_empty() {
        return Err(DataError::Invalid {
            dataset: dataset.to_string(),
            message: format!("class folder {} is empty (no .jpg, .jpeg or .png files)", class_dir.display()),
        });
    }
    files.sort_unstable_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    Ok(files)
}

fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Whether `name` ends in `.jpg`, `.jpeg` or `.png`, in any case.
pub(crate) fn is_image_name(name: &OsStr) -> bool {
    let ext = match Path::new(name).extension().and_then(OsStr::to_str) {
        Some(ext) => ext,
        None => return false,
    };
    ["jpg", "jpeg", "png"].iter().any(|e| ext.eq_ignore_ascii_case(e))
}

/// Reads and decodes an image file as RGB8. The format is detected from the contents, so
/// a PNG named `.jpg` still loads.
pub fn decode_file(path: &Path) -> Result<Image, DataError> {
    let bytes = fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let decode_err = |message: String| DataError::Decode {
        path: path.to_path_buf(),
        message,
    };
    if bytes.is_empty() {
        return Err(decode_err("the file is empty".to_string()));
    }
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_err(e.to_string()))?;
    if reader.format().is_none() {
        return Err(decode_err("not a JPEG or PNG file".to_string()));
    }
    let rgb = reader.decode().map_err(|e| decode_err(e.to_string()))?.into_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    Image::from_rgb(width, height, rgb.into_raw()).ok_or_else(|| decode_err("decoder returned a buffer of the wrong size".to_string()))
}

/// One split of an image-folder dataset.
pub struct ImageFolder {
    dataset: String,
    listing: Listing,
}

impl ImageFolder {
    pub fn open(dataset: &str, root: &Path, split: &str) -> Result<Self, DataError> {
        Ok(ImageFolder {
            dataset: dataset.to_string(),
            listing: list_split(dataset, root, split)?,
        })
    }

    /// The absolute path of image `i`.
    pub fn path(&self, i: usize) -> Option<PathBuf> {
        self.listing.files.get(i).map(|rel| self.listing.split_dir.join(rel))
    }
}

impl Source for ImageFolder {
    fn len(&self) -> usize {
        self.listing.files.len()
    }

    fn classes(&self) -> &[String] {
        &self.listing.classes
    }

    fn label(&self, i: usize) -> Option<usize> {
        self.listing.labels.get(i).map(|&l| l as usize)
    }

    fn load(&self, i: usize) -> Result<Image, DataError> {
        let path = self.path(i).ok_or_else(|| DataError::Invalid {
            dataset: self.dataset.clone(),
            message: format!("{} has {} images, no image {i}", self.listing.split_dir.display(), self.len()),
        })?;
        decode_file(&path)
    }

    fn describe(&self, i: usize) -> String {
        match self.path(i) {
            Some(path) => path.display().to_string(),
            None => format!("{}:<no image {i}>", self.listing.split_dir.display()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a `w` x `h` PNG or JPEG (by extension) with a simple pattern.
    pub(crate) fn write_image(path: &Path, w: u32, h: u32, seed: u8) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8 ^ seed, (y * 5) as u8, seed.wrapping_mul(31)])
        });
        img.save(path).unwrap();
    }

    fn tiny_dataset() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write_image(&r.join("train/dog/b.png"), 8, 8, 1);
        write_image(&r.join("train/dog/a.JPG"), 10, 6, 2);
        write_image(&r.join("train/cat/z.jpeg"), 32, 32, 3);
        write_image(&r.join("train/cat/sub/y.png"), 5, 7, 4);
        fs::write(r.join("train/cat/notes.txt"), "ignored").unwrap();
        fs::write(r.join("train/cat/.hidden.png"), "ignored").unwrap();
        fs::create_dir_all(r.join("train/.cache")).unwrap();
        write_image(&r.join("test/cat/0.png"), 4, 4, 5);
        dir
    }

    #[test]
    fn lists_in_stable_order_with_labels() {
        let dir = tiny_dataset();
        let src = ImageFolder::open("d", dir.path(), "train").unwrap();
        assert_eq!(src.classes(), ["cat", "dog"]);
        let rel: Vec<_> = src.listing.files.iter().map(|p| p.to_str().unwrap().to_string()).collect();
        assert_eq!(rel, ["cat/sub/y.png", "cat/z.jpeg", "dog/a.JPG", "dog/b.png"]);
        assert_eq!((0..4).map(|i| src.label(i).unwrap()).collect::<Vec<_>>(), [0, 0, 1, 1]);
        assert_eq!(src.label(4), None);
        assert!(src.describe(1).ends_with("z.jpeg"));
    }

    #[test]
    fn loads_mixed_sizes_as_rgb() {
        let dir = tiny_dataset();
        let src = ImageFolder::open("d", dir.path(), "train").unwrap();
        let sizes: Vec<_> = (0..4)
            .map(|i| {
                let img = src.load(i).unwrap();
                assert_eq!(img.rgb.len(), img.width * img.height * 3);
                (img.width, img.height)
            })
            .collect();
        assert_eq!(sizes, [(5, 7), (32, 32), (10, 6), (8, 8)]);
        // PNG is lossless: exact pixel check.
        let img = src.load(3).unwrap();
        assert_eq!(img.pixel(2, 3), [14 ^ 1, 15, 31]);
        assert!(matches!(src.load(9), Err(DataError::Invalid { .. })));
    }

    #[test]
    fn grayscale_and_alpha_convert_to_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let gray = dir.path().join("train/a/g.png");
        fs::create_dir_all(gray.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(3, 2, image::Luma([90])).save(&gray).unwrap();
        image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 4]))
            .save(dir.path().join("train/a/rgba.png"))
            .unwrap();
        let src = ImageFolder::open("d", dir.path(), "train").unwrap();
        assert_eq!(src.load(0).unwrap().rgb, vec![90; 18]);
        assert_eq!(src.load(1).unwrap().pixel(1, 1), [1, 2, 3]);
    }

    #[test]
    fn unknown_split_lists_available() {
        let dir = tiny_dataset();
        match ImageFolder::open("d", dir.path(), "val") {
            Err(DataError::UnknownSplit { available, .. }) => assert_eq!(available, "test, train"),
            other => panic!("{:?}", other.err()),
        }
    }

    #[test]
    fn missing_root_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nope");
        let err = ImageFolder::open("d", &root, "train").err().unwrap();
        assert!(matches!(&err, DataError::Io { path, .. } if *path == root), "{err}");
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn empty_class_folder_is_an_error() {
        let dir = tiny_dataset();
        fs::create_dir_all(dir.path().join("train/emu")).unwrap();
        fs::write(dir.path().join("train/emu/readme.txt"), "x").unwrap();
        let err = ImageFolder::open("d", dir.path(), "train").err().unwrap();
        assert!(matches!(err, DataError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("emu") && err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn split_without_classes_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("train")).unwrap();
        let err = ImageFolder::open("d", dir.path(), "train").err().unwrap();
        assert!(err.to_string().contains("no class folders"), "{err}");
    }

    #[test]
    fn bad_files_fail_to_load_naming_the_path() {
        let dir = tiny_dataset();
        let cls = dir.path().join("train/bad");
        fs::create_dir_all(&cls).unwrap();
        fs::write(cls.join("0-empty.jpg"), b"").unwrap();
        fs::write(cls.join("1-text.jpg"), "this is not a JPEG").unwrap();
        write_image(&cls.join("2-full.jpg"), 16, 16, 9);
        let full = fs::read(cls.join("2-full.jpg")).unwrap();
        fs::write(cls.join("3-truncated.jpg"), &full[..full.len() / 3]).unwrap();
        // A PNG under a .jpg name loads: the format comes from the contents.
        fs::copy(dir.path().join("train/dog/b.png"), cls.join("4-png.jpg")).unwrap();

        let src = ImageFolder::open("d", dir.path(), "train").unwrap();
        let index = |name: &str| (0..src.len()).find(|&i| src.describe(i).ends_with(name)).unwrap();
        for name in ["0-empty.jpg", "1-text.jpg", "3-truncated.jpg"] {
            let err = src.load(index(name)).err().unwrap_or_else(|| panic!("{name} decoded"));
            assert!(matches!(err, DataError::Decode { .. }), "{name}: {err}");
            assert!(err.to_string().contains(name), "{err}");
        }
        assert_eq!(src.load(index("2-full.jpg")).unwrap().width, 16);
        assert_eq!(src.load(index("4-png.jpg")).unwrap().width, 8);
    }

    #[test]
    fn deleted_file_is_an_io_error() {
        let dir = tiny_dataset();
        let src = ImageFolder::open("d", dir.path(), "train").unwrap();
        fs::remove_file(dir.path().join("train/dog/b.png")).unwrap();
        let err = src.load(3).err().unwrap();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
        assert!(err.to_string().contains("b.png"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_and_loops_are_errors() {
        let dir = tiny_dataset();
        let r = dir.path();
        // A class that is a link to a folder elsewhere is a class like any other.
        write_image(&r.join("elsewhere/x.png"), 4, 4, 1);
        std::os::unix::fs::symlink(r.join("elsewhere"), r.join("train/eel")).unwrap();
        let src = ImageFolder::open("d", r, "train").unwrap();
        assert_eq!(src.classes(), ["cat", "dog", "eel"]);
        assert_eq!(src.load(4).unwrap().width, 4);

        // A link back to an ancestor is a loop: an error, not a hang.
        std::os::unix::fs::symlink(r.join("train/dog"), r.join("train/dog/again")).unwrap();
        let err = ImageFolder::open("d", r, "train").err().unwrap();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
        assert!(err.to_string().contains("again"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn dangling_class_link_is_an_error() {
        let dir = tiny_dataset();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("train/ghost")).unwrap();
        let err = ImageFolder::open("d", dir.path(), "train").err().unwrap();
        assert!(err.to_string().contains("ghost"), "{err}");
    }

    #[test]
    fn extension_rules() {
        for ok in ["a.jpg", "a.JPEG", "b.Png", "x.y.jpg"] {
            assert!(is_image_name(OsStr::new(ok)), "{ok}");
        }
        for no in ["a.gif", "jpg", "a.jpg.txt", "a", ".png.bak"] {
            assert!(!is_image_name(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn real_cifar10_listing() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/cifar10");
        if !root.is_dir() {
            crate::skip::skip("real_cifar10_listing", &format!("{} is absent", root.display()));
            return;
        }
        let t = std::time::Instant::now();
        let train = ImageFolder::open("cifar10", &root, "train").unwrap();
        let elapsed = t.elapsed();
        assert_eq!(train.len(), 50_000);
        assert_eq!(train.classes().len(), 10);
        assert_eq!(train.classes()[0], "airplane");
        assert_eq!(train.label(49_999), Some(9));
        assert!(elapsed.as_secs_f32() < 5.0, "listing took {elapsed:?}");
        let img = train.load(12_345).unwrap();
        assert_eq!((img.width, img.height), (32, 32));
        let test = ImageFolder::open("cifar10", &root, "test").unwrap();
        assert_eq!(test.len(), 10_000);
    }
}
