//! How much of a split a stage decodes once and keeps: splits whose decoded pixels fit
//! the budget are decoded up front (fast epochs, memory growing with the split), larger
//! ones are streamed (decoded by the batch producers as they are read, memory bounded by
//! the batches in flight). An image reads the same bytes either way, so the budget never
//! changes a result and is not part of any key.
use super::DataError;

/// The environment variable that sets the budget (`0` streams every split).
pub const DECODE_BUDGET_VAR: &str = "KTLAB_DECODE_BUDGET";
/// The default budget: 2 GiB, which keeps every CIFAR-10 split at up to 64 px (50,000
/// images at 64 px are 0.61 GB) and streams ImageNet-sized splits (1.28M images at 224 px
/// are 193 GB).
pub const DEFAULT_DECODE_BUDGET: u64 = 2 << 30;

/// Batches a training stage's producer keeps ready ahead of the training step (besides
/// the one it assembles): with streamed images, what the stage holds of its split.
pub const BATCHES_AHEAD: usize = 3;

/// The environment variable that turns on the decoded-image cache (`1`, `true`): a split
/// over the budget is decoded once into `<store>/decoded/` and memory-mapped, instead of
/// being decoded again in every epoch.
pub const DECODE_CACHE_VAR: &str = "KTLAB_DECODE_CACHE";

/// Whether [`DECODE_CACHE_VAR`] turns the decoded-image cache on (off by default).
pub fn decode_cache() -> Result<bool, DataError> {
    match std::env::var(DECODE_CACHE_VAR).as_deref() {
        Err(_) | Ok("") | Ok("0") | Ok("false") => Ok(false),
        Ok("1") | Ok("true") => Ok(true),
        Ok(v) => Err(DataError::Setting {
            name: DECODE_CACHE_VAR.into(),
            message: format!("`{v}` is not one of 1, true, 0, false"),
        }),
    }
}

/// Bytes of `n` decoded images of side `size` (8-bit RGB).
pub fn decoded_bytes(n: usize, size: usize) -> u64 {
    n as u64 * 3 * (size * size) as u64
}

/// The decode budget in bytes: [`DECODE_BUDGET_VAR`] when set (`0`, `512MiB`, `4GiB`,
/// `1.5GB`, plain bytes), else [`DEFAULT_DECODE_BUDGET`].
pub fn decode_budget() -> Result<u64, DataError> {
    match std::env::var(DECODE_BUDGET_VAR) {
        Ok(v) => parse_bytes(&v).ok_or_else(|| DataError::Setting {
            name: DECODE_BUDGET_VAR.into(),
            message: format!("`{v}` is not a size (examples: 0, 512MiB, 4GiB, 1.5GB, 1000000)"),
        }),
        Err(_) => Ok(DEFAULT_DECODE_BUDGET),
    }
}

/// A size with an optional unit (B, KB/MB/GB/TB powers of 1000, KiB/MiB/GiB/TiB powers of
/// 1024, case-insensitive).
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return None,
    };
    let bytes = value * scale;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_bytes("0"), Some(0));
        assert_eq!(parse_bytes("1000000"), Some(1_000_000));
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes(" 4 gib "), Some(4 << 30));
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        for bad in ["", "GiB", "-1", "4 parsecs", "1e99TB", "1.2.3"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_default_keeps_cifar_and_streams_imagenet() {
        assert!(decoded_bytes(50_000, 64) <= DEFAULT_DECODE_BUDGET);
        assert!(decoded_bytes(1_281_167, 224) > DEFAULT_DECODE_BUDGET);
    }
}
