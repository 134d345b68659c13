//! Mixed precision: autocast regions around a training step's forward pass and loss
//! (libtorch's own, through `csrc/autocast.cpp`), and dynamic loss scaling for float16,
//! with PyTorch's `torch.autocast` and `GradScaler` semantics and defaults.
//!
//! Weights, gradients and optimiser state stay float32 (autocast casts weights per
//! operation and caches the casts within a region); the scaler's state is part of a
//! checkpoint, so that a resumed run continues bit for bit as on float32.
use std::os::raw::{c_char, c_int};

use tch::{Device, Kind, Tensor};

pub use super::kinds::Precision;

extern "C" {
    fn ktlab_autocast_enter(cuda: c_int, half: c_int, message: *mut c_char, capacity: c_int) -> c_int;
    fn ktlab_autocast_exit(cuda: c_int);
    fn ktlab_autocast_is_enabled(cuda: c_int) -> c_int;
}

/// An autocast region on this thread, closed when dropped; nothing for `fp32`.
#[must_use = "autocast ends when the region is dropped"]
pub struct Autocast {
    cuda: Option<c_int>,
}

impl Autocast {
    /// Opens a region for `device` with `precision`'s reduced type, or says why libtorch
    /// refused (a device type without autocast for that type).
    pub fn enter(precision: Precision, device: Device) -> Result<Autocast, String> {
        let half = match precision {
            Precision::Fp32 => return Ok(Autocast { cuda: None }),
            Precision::Bf16 => 0,
            Precision::Fp16 => 1,
        };
        let cuda = c_int::from(device.is_cuda());
        let mut message = [0 as c_char; 512];
        // SAFETY: the shim writes at most `capacity` bytes (NUL-terminated) into `message`.
        let rc = unsafe { ktlab_autocast_enter(cuda, half, message.as_mut_ptr(), message.len() as c_int) };
        if rc != 0 {
            // SAFETY: NUL-terminated by the shim (or all zeros).
            let text = unsafe { std::ffi::CStr::from_ptr(message.as_ptr()) }.to_string_lossy();
            return Err(format!("{} autocast on {device:?}: {text}", precision.name()));
        }
        Ok(Autocast { cuda: Some(cuda) })
    }

    /// Whether autocast is on for `device`'s type on this thread.
    pub fn is_enabled(device: Device) -> bool {
        // SAFETY: reads thread-local state only.
        unsafe { ktlab_autocast_is_enabled(c_int::from(device.is_cuda())) != 0 }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some(cuda) = self.cuda {
            // SAFETY: closes the region this value opened.
            unsafe { ktlab_autocast_exit(cuda) }
        }
    }
}

/// Dynamic loss scaling (PyTorch's `GradScaler` defaults): the loss is multiplied by
/// `scale` before the backward pass so that small float16 gradients do not flush to zero;
/// the gradients are divided by it before the update. A step whose gradients are not all
/// finite is skipped and the scale halved; after `GROWTH_INTERVAL` good steps in a row it
/// doubles.
#[derive(Clone, Debug, PartialEq)]
pub struct LossScaler {
    scale: f64,
    good_steps: i64,
    /// Steps skipped since the last `take_skipped` (not state: a report).
    skipped: usize,
}

const INIT_SCALE: f64 = 65536.0;
const GROWTH_FACTOR: f64 = 2.0;
const BACKOFF_FACTOR: f64 = 0.5;
const GROWTH_INTERVAL: i64 = 2000;

impl Default for LossScaler {
    fn default() -> Self {
        LossScaler {
            scale: INIT_SCALE,
            good_steps: 0,
            skipped: 0,
        }
    }
}

impl LossScaler {
    /// A scaler where `precision` needs one (`fp16`).
    pub fn for_precision(precision: Precision) -> Option<LossScaler> {
        (precision == Precision::Fp16).then(LossScaler::default)
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Divides `grads` (of the scaled loss; undefined ones are skipped) by the scale in
    /// place and updates the scale. `true` when every gradient is finite and the step
    /// may be taken; `false`: skip it.
    pub fn unscale(&mut self, grads: &mut [Tensor]) -> bool {
        let inverse = 1.0 / self.scale;
        let sums: Vec<Tensor> = tch::no_grad(|| {
            grads
                .iter_mut()
                .filter(|g| g.defined())
                .map(|g| {
                    let _ = g.g_mul_scalar_(inverse);
                    // Any infinity or NaN makes the sum non-finite (a float64 sum of finite
                    // float32 values cannot overflow).
                    g.sum(Kind::Double)
                })
                .collect()
        });
        let finite = sums.is_empty() || Tensor::stack(&sums, 0).sum(Kind::Double).double_value(&[]).is_finite();
        if finite {
            self.good_steps += 1;
            if self.good_steps == GROWTH_INTERVAL {
                self.scale *= GROWTH_FACTOR;
                self.good_steps = 0;
            }
        } else {
            self.scale *= BACKOFF_FACTOR;
            self.good_steps = 0;
            self.skipped += 1;
        }
        finite
    }

    /// Steps skipped since the last call, and the count reset.
    pub fn take_skipped(&mut self) -> usize {
        std::mem::take(&mut self.skipped)
    }

    /// State for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("amp.scale".into(), Tensor::from_slice(&[self.scale])),
            ("amp.good_steps".into(), Tensor::from_slice(&[self.good_steps])),
        ]
    }

    /// Restores state written by `state_tensors` (other names are ignored).
    pub fn load_state(&mut self, tensors: &[(String, Tensor)]) {
        for (k, v) in tensors {
            match k.as_str() {
                "amp.scale" => self.scale = v.double_value(&[0]),
                "amp.good_steps" => self.good_steps = v.int64_value(&[0]),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_turns_cpu_autocast_on_for_bf16_and_off_again() {
        assert!(!Autocast::is_enabled(Device::Cpu));
        {
            let _region = Autocast::enter(Precision::Bf16, Device::Cpu).unwrap();
            assert!(Autocast::is_enabled(Device::Cpu));
            let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
            let b = Tensor::randn([8, 3], (Kind::Float, Device::Cpu));
            assert_eq!(a.matmul(&b).kind(), Kind::BFloat16, "matmul runs in bf16 inside the region");
        }
        assert!(!Autocast::is_enabled(Device::Cpu));
        let _fp32 = Autocast::enter(Precision::Fp32, Device::Cpu).unwrap();
        assert!(!Autocast::is_enabled(Device::Cpu));
        let a = Tensor::randn([4, 8], (Kind::Float, Device::Cpu));
        assert_eq!(a.matmul(&a.tr()).kind(), Kind::Float);
    }

    #[test]
    fn the_scaler_skips_non_finite_steps_halves_and_grows_like_grad_scaler() {
        let mut s = LossScaler::default();
        assert_eq!(s.scale(), 65536.0);
        let mut grads = vec![Tensor::from_slice(&[65536.0f32, -131072.0]), Tensor::new()];
        assert!(s.unscale(&mut grads));
        assert_eq!(Vec::<f32>::try_from(&grads[0]).unwrap(), vec![1.0, -2.0]);
        for bad in [f32::INFINITY, f32::NAN] {
            let before = s.scale();
            let mut grads = vec![Tensor::from_slice(&[1.0f32, bad])];
            assert!(!s.unscale(&mut grads), "{bad} must skip the step");
            assert_eq!(s.scale(), before * 0.5);
        }
        let scale = s.scale();
        for _ in 0..GROWTH_INTERVAL - 1 {
            assert!(s.unscale(&mut [Tensor::from_slice(&[1.0f32])]));
        }
        assert_eq!(s.scale(), scale);
        assert!(s.unscale(&mut [Tensor::from_slice(&[1.0f32])]));
        assert_eq!(s.scale(), scale * 2.0);
        assert_eq!(s.take_skipped(), 2);
        assert_eq!(s.take_skipped(), 0);
        let mut restored = LossScaler::default();
        restored.load_state(&s.state_tensors());
        assert_eq!(restored, s);
    }
}
