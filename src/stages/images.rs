//! How a stage gets the images of a split it reads: decoded up front when they fit the
//! decode budget, else from the decoded-image cache when it is on (`KTLAB_DECODE_CACHE`),
//! else streamed; the originals (streamed) for a random resized crop. Every way gives an
//! image the same bytes, so none is keyed.
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{RunCtx, StageError};
use crate::data::{decode_budget, decode_cache, decoded_bytes, Fit, Source};
use crate::train::batches::ImageSet;

/// What a stage reads of a split's images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reading {
    /// Whole images at the side, by the fit.
    Whole(Fit),
    /// The decoded originals, for crops cut from them (streamed: never kept).
    Originals,
}

/// The images of `source` (the split of the stage input `key`) at side `size`.
pub(super) fn split_images(
    ctx: &RunCtx,
    key: &str,
    source: Arc<dyn Source>,
    size: usize,
    reading: Reading,
) -> Result<ImageSet, StageError> {
    let fit = match reading {
        Reading::Originals => return Ok(ImageSet::open(source, size, Fit::Squash, 0, &|_, _| {})?),
        Reading::Whole(fit) => fit,
    };
    let budget = decode_budget()?;
    if decoded_bytes(source.len(), size) > budget && decode_cache()? {
        if let Some(dir) = ctx.decoded_dir {
            let path = dir.join(cache_name(ctx.data_fingerprint(key)?, size, fit));
            (ctx.note)(format!("reading `{key}` from the decoded-image cache {}", path.display()));
            return Ok(ImageSet::cached(source.as_ref(), size, fit, &path, ctx.progress)?);
        }
    }
    Ok(ImageSet::open(source, size, fit, budget, &|_, _| {})?)
}

/// The cache file of a split (by its content fingerprint) at `size` by `fit`.
fn cache_name(fingerprint: &str, size: usize, fit: Fit) -> String {
    let mut h = Sha256::new();
    h.update(format!("decoded v1\n{fingerprint}\n{size}\n{fit:?}").as_bytes());
    format!("{:x}.u8", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_is_named_by_the_split_the_side_and_the_fit() {
        let a = cache_name("f", 224, Fit::Squash);
        assert_eq!(a, cache_name("f", 224, Fit::Squash));
        for other in [
            cache_name("g", 224, Fit::Squash),
            cache_name("f", 256, Fit::Squash),
            cache_name("f", 224, Fit::CentreCrop { resize: 256 }),
        ] {
            assert_ne!(a, other);
        }
        assert!(a.ends_with(".u8") && a.len() == 67);
    }
}
