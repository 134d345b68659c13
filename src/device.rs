//! The `device` setting: `auto`, `cpu`, `cuda` or `cuda:N`.
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                _ => Err(format!("expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", found \"{s}\"")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// A resolved device: where a stage instance computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// "cpu" or "cuda": the part of the device that can change numbers.
    pub fn class(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }
}

#[cfg(feature = "torch")]
impl From<Device> for tch::Device {
    fn from(d: Device) -> tch::Device {
        match d {
            Device::Cpu => tch::Device::Cpu,
            Device::Cuda(n) => tch::Device::Cuda(n),
        }
    }
}

impl DeviceSpec {
    /// The device on this machine, or why it cannot be had here.
    pub fn resolve(self) -> Result<Device, String> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Auto if cuda_device_count() > 0 => Ok(Device::Cuda(0)),
            DeviceSpec::Auto => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                let count = cuda_device_count();
                if n < count {
                    Ok(Device::Cuda(n))
                } else if count == 0 {
                    Err(format!("device `{self}` requested but CUDA is not available on this machine"))
                } else {
                    Err(format!("device `{self}` requested but this machine has {count} CUDA device(s)"))
                }
            }
        }
    }
}

/// How many CUDA devices libtorch offers on this machine (0 without CUDA).
#[cfg(feature = "torch")]
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// How many CUDA devices libtorch offers on this machine (0 without CUDA), from a build
/// without libtorch: without the CUDA driver library there are none (libtorch loads the same
/// `libcuda.so.1`); with it, the engine is asked, so that both builds plan alike.
#[cfg(not(feature = "torch"))]
pub fn cuda_device_count() -> usize {
    if !cfg!(libtorch_cuda) {
        return 0;
    }
    // SAFETY: loading the driver library runs its initialisers only; nothing is called.
    let driver = unsafe { libloading::Library::new("libcuda.so.1") };
    if driver.is_err() {
        return 0;
    }
    crate::engine::cuda_device_count().unwrap_or(0)
}
