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

impl DeviceSpec {
    /// The libtorch device, or why it cannot be had on this machine.
    pub fn resolve(self) -> Result<tch::Device, String> {
        match self {
            DeviceSpec::Cpu => Ok(tch::Device::Cpu),
            DeviceSpec::Auto => Ok(tch::Device::cuda_if_available()),
            DeviceSpec::Cuda(n) => {
                let count = cuda_device_count();
                if n < count {
                    Ok(tch::Device::Cuda(n))
                } else if count == 0 {
                    Err(format!("device `{self}` requested but CUDA is not available on this machine"))
                } else {
                    Err(format!("device `{self}` requested but this machine has {count} CUDA device(s)"))
                }
            }
        }
    }
}

/// How many CUDA devices this machine offers (0 without CUDA).
pub fn cuda_device_count() -> usize {
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// "cpu" or "cuda": the part of the device that can change numbers.
pub fn device_class(d: tch::Device) -> &'static str {
    match d {
        tch::Device::Cpu => "cpu",
        _ => "cuda",
    }
}
