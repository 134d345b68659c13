//! Feature matrices as the probes read them: `[n, d]` float32 rows, in memory or over a
//! file (`crate::data::NpyMatrix::file_tensor`), standardised with the statistics of all
//! their rows but only ever a batch or a block of rows at a time, moved to the device the
//! probe runs on, so that a probe's memory does not grow with the split. Elementwise
//! standardisation of a row gives the same bits whether the row is taken alone or with
//! the whole matrix, so a probe fitted this way is the probe fitted on the whole
//! standardised matrix.
#[cfg(feature = "torch")]
use tch::{Device, Kind, Tensor};

/// Bytes of float32 rows a probe scores at once.
pub const BLOCK_BYTES: i64 = 256 << 20;

/// The largest kNN memory bank (float32 bytes) compared whole; a larger one is read in
/// blocks of this size.
pub const BANK_BYTES: i64 = 512 << 20;

/// The per-dimension mean and standard deviation of a feature matrix (`[1, d]`, on the
/// probe's device).
#[cfg(feature = "torch")]
pub struct Standardize {
    mean: Tensor,
    std: Tensor,
}

#[cfg(feature = "torch")]
impl Standardize {
    /// Of every column of `x` (population standard deviation, at least 1e-6), computed
    /// where `x` is (one pass over a file-backed matrix), kept on `device`. A float16
    /// matrix (features stored as float16) is read a block of rows at a time in float64:
    /// libtorch's reductions of it on the CPU would first convert the whole matrix to
    /// float32.
    pub fn of(x: &Tensor, device: Device) -> Standardize {
        match x.kind() {
            Kind::Float => {}
            Kind::Half | Kind::BFloat16 => return Standardize::of_blocks(x, device),
            _ => return Standardize::of(&x.to_kind(Kind::Float), device),
        }
        let dim = Some([0i64].as_slice());
        let mean = x.mean_dim(dim, true, Kind::Float);
        let std = x.std_dim(dim, false, true).clamp_min(1e-6);
        Standardize {
            mean: mean.to_device(device),
            std: std.to_device(device),
        }
    }

    /// [`Standardize::of`] in two passes over blocks of rows (the mean, then the squared
    /// deviations from it), each block converted to float64.
    fn of_blocks(x: &Tensor, device: Device) -> Standardize {
        let (n, d) = (x.size()[0], x.size().get(1).copied().unwrap_or(1));
        let rows = (block_rows(d) / 2).max(1);
        let dim = Some([0i64].as_slice());
        let zeros = || Tensor::zeros([1, d], (Kind::Double, x.device()));
        let per_block = |f: &dyn Fn(&Tensor) -> Tensor| {
            let mut acc = zeros();
            let mut start = 0;
            while start < n {
                let len = rows.min(n - start);
                acc += f(&x.narrow(0, start, len).to_kind(Kind::Double)).sum_dim_intlist(dim, true, Kind::Double);
                start += len;
            }
            acc / n.max(1) as f64
        };
        let mean = per_block(&|b| b.shallow_clone());
        let variance = per_block(&|b| (b - &mean).square());
        Standardize {
            mean: mean.to_kind(Kind::Float).to_device(device),
            std: variance.sqrt().to_kind(Kind::Float).clamp_min(1e-6).to_device(device),
        }
    }

    pub fn device(&self) -> Device {
        self.mean.device()
    }

    /// `(x - mean) / std` of rows `x` on this device, in float32 (float16 rows converted).
    pub fn apply(&self, x: &Tensor) -> Tensor {
        (x.to_kind(Kind::Float) - &self.mean) / &self.std
    }

    /// The rows `idx` (an int64 CPU tensor) of `x`, moved to this device, standardised.
    pub fn rows(&self, x: &Tensor, idx: &Tensor) -> Tensor {
        self.apply(&x.index_select(0, &idx.to_device(x.device())).to_device(self.device()))
    }

    /// The same statistics (their tensors are never modified).
    pub fn shallow_clone(&self) -> Standardize {
        Standardize {
            mean: self.mean.shallow_clone(),
            std: self.std.shallow_clone(),
        }
    }
}

/// Rows of a `[n, d]` float32 matrix in one block of at most [`BLOCK_BYTES`].
pub fn block_rows(d: i64) -> i64 {
    (BLOCK_BYTES / (4 * d.max(1))).max(1)
}

#[cfg(feature = "torch")]
/// `f` of consecutive row blocks of `x` (each at most [`BLOCK_BYTES`], moved to
/// `device`), concatenated along the rows: a split small enough is one block.
pub fn map_blocks(x: &Tensor, device: Device, f: &dyn Fn(&Tensor) -> Tensor) -> Tensor {
    map_row_blocks(x, device, block_rows(x.size().get(1).copied().unwrap_or(1)), f)
}

/// [`map_blocks`] with blocks of `rows` rows.
#[cfg(feature = "torch")]
fn map_row_blocks(x: &Tensor, device: Device, rows: i64, f: &dyn Fn(&Tensor) -> Tensor) -> Tensor {
    let n = x.size()[0];
    if n <= rows {
        return f(&x.to_device(device));
    }
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let len = rows.min(n - start);
        out.push(f(&x.narrow(0, start, len).to_device(device)));
        start += len;
    }
    Tensor::cat(&out, 0)
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;

    /// Rows standardised alone are the rows of the standardised matrix, bit for bit, and
    /// blocks give what the whole gives.
    #[test]
    fn rows_and_blocks_are_the_whole_matrix_bit_for_bit() {
        tch::manual_seed(1);
        let x = Tensor::randn([500, 33], (Kind::Float, Device::Cpu)) * 3.0 + 1.5;
        let s = Standardize::of(&x, Device::Cpu);
        let whole = s.apply(&x);
        let idx = Tensor::from_slice(&[499i64, 3, 3, 250, 0]);
        assert!(s.rows(&x, &idx).equal(&whole.index_select(0, &idx)));
        let dim = Some([0i64].as_slice());
        assert!((whole.mean_dim(dim, false, Kind::Float).abs().max().double_value(&[])) < 1e-5);
        let f = |b: &Tensor| s.apply(b).sum_dim_intlist(1, true, Kind::Float);
        let want = whole.sum_dim_intlist(1, true, Kind::Float);
        assert!(map_blocks(&x, Device::Cpu, &f).equal(&want));
        for rows in [1, 7, 499, 500] {
            assert!(map_row_blocks(&x, Device::Cpu, rows, &f).equal(&want), "blocks of {rows}");
        }
        assert_eq!(block_rows(2048), 32_768);
        // Float16 rows (features stored as float16): the statistics of the same values to
        // float32 rounding, read by blocks; rows and blocks come out float32.
        let h = x.to_kind(Kind::Half);
        let sh = Standardize::of(&h, Device::Cpu);
        let sf = Standardize::of(&h.to_kind(Kind::Float), Device::Cpu);
        let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) <= 1e-5 * (1.0 + b.abs().max().double_value(&[]));
        assert!(close(&sh.mean, &sf.mean) && close(&sh.std, &sf.std));
        assert_eq!(sh.rows(&h, &idx).kind(), Kind::Float);
        let g = |b: &Tensor| sh.apply(b).sum_dim_intlist(1, true, Kind::Float);
        for rows in [1, 7, 500] {
            assert!(map_row_blocks(&h, Device::Cpu, rows, &g).equal(&g(&h)), "float16 blocks of {rows}");
        }
        assert_eq!(block_rows(1 << 40), 1);
    }
}
