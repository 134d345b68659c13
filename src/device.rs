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
    cuda::load();
    if tch::Cuda::is_available() {
        tch::Cuda::device_count().max(0) as usize
    } else {
        0
    }
}

/// libtorch's CUDA half (`libtorch_cuda.so`, with cuDNN, cuBLAS and the CUDA runtime behind
/// it) is loaded when CUDA is first asked about, not at start-up: a process that computes on
/// the CPU never maps it (a third of a second and about 340 MiB of resident memory less).
/// Loading it registers CUDA with libtorch, as linking it did.
#[cfg(feature = "torch")]
pub mod cuda {
    use std::sync::OnceLock;

    /// Loads `libtorch_cuda.so` once, where there is a driver and libtorch has CUDA. Call it
    /// before libtorch is first asked about CUDA (`manual_seed` asks): libtorch keeps the
    /// answer of that first query.
    pub fn load() {
        static LOADED: OnceLock<bool> = OnceLock::new();
        LOADED.get_or_init(|| cfg!(libtorch_cuda) && super::driver_present() && load_libtorch_cuda().is_ok());
    }

    /// Loads `libtorch_cuda.so` from the folder of the `libtorch_cpu.so` this process runs
    /// on (the same libtorch), kept loaded and its symbols global, as a linked library's.
    pub fn load_libtorch_cuda() -> Result<(), String> {
        let name = "libtorch_cuda.so";
        let path = loaded_libtorch_dir().map(|d| d.join(name)).filter(|p| p.is_file());
        let path = path.map_or_else(|| name.into(), |p| p.into_os_string());
        #[cfg(unix)]
        {
            use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
            // SAFETY: libtorch's own CUDA library, of the libtorch already loaded; its
            // initialisers register CUDA with it, nothing else is called.
            let lib = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| e.to_string())?;
            std::mem::forget(lib);
            Ok(())
        }
        #[cfg(not(unix))]
        {
            // SAFETY: as above.
            let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| e.to_string())?;
            std::mem::forget(lib);
            Ok(())
        }
    }

    /// The folder of the loaded `libtorch_cpu` (Linux: from `/proc/self/maps`).
    fn loaded_libtorch_dir() -> Option<std::path::PathBuf> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let line = maps.lines().find(|l| l.ends_with("/libtorch_cpu.so"))?;
        let path = std::path::Path::new(&line[line.find('/')?..]);
        path.parent().map(std::path::Path::to_path_buf)
    }
}

/// How many CUDA devices libtorch offers on this machine (0 without CUDA), from a build
/// without libtorch: without the CUDA driver library there are none (libtorch loads the same
/// `libcuda.so.1`); with it, the engine is asked, so that both builds plan alike.
#[cfg(not(feature = "torch"))]
pub fn cuda_device_count() -> usize {
    if !cfg!(libtorch_cuda) || !driver_present() {
        return 0;
    }
    crate::engine::cuda_device_count().unwrap_or(0)
}

/// Whether the CUDA driver library loads here (without it CUDA cannot work; libtorch's
/// runtime loads the same `libcuda.so.1`).
fn driver_present() -> bool {
    // SAFETY: loading the driver library runs its initialisers only; nothing is called.
    unsafe { libloading::Library::new("libcuda.so.1") }.is_ok()
}

#[cfg(all(test, feature = "torch"))]
mod tests {
    use super::*;

    /// In a process of its own (libtorch caches its CUDA hooks at the first CUDA query, and
    /// other tests of this binary query it): after `load_libtorch_cuda`, CUDA is registered;
    /// without a GPU a CUDA tensor fails for want of a device or driver, never of the backend.
    #[test]
    fn cuda_is_registered_by_loading_libtorch_cuda() {
        if !cfg!(libtorch_cuda) {
            crate::skip::skip("cuda_is_registered_by_loading_libtorch_cuda", "this libtorch has no CUDA");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "device::tests::cuda_probe_in_a_fresh_process",
                "--ignored",
                "--nocapture",
            ])
            .env("KTLAB_CUDA_PROBE_CHILD", "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    }

    #[test]
    #[ignore = "run by cuda_is_registered_by_loading_libtorch_cuda in a process of its own"]
    fn cuda_probe_in_a_fresh_process() {
        assert!(std::env::var_os("KTLAB_CUDA_PROBE_CHILD").is_some(), "run through its parent test");
        cuda::load_libtorch_cuda().unwrap();
        match tch::Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cuda(0))) {
            Ok(t) => assert_eq!(t.device(), tch::Device::Cuda(0)),
            Err(e) => {
                let e = e.to_string();
                eprintln!("a CUDA tensor here: {}", e.lines().next().unwrap_or_default());
                assert!(!e.contains("without ATen_cuda") && !e.contains("'CUDA' backend"), "{e}");
            }
        }
    }

    #[test]
    fn resolves_devices_and_names_their_class() {
        assert_eq!(DeviceSpec::Cpu.resolve(), Ok(Device::Cpu));
        let n = cuda_device_count();
        assert_eq!(DeviceSpec::Auto.resolve(), Ok(if n > 0 { Device::Cuda(0) } else { Device::Cpu }));
        assert!(DeviceSpec::Cuda(n).resolve().is_err());
        assert_eq!(Device::Cpu.class(), "cpu");
        assert_eq!(Device::Cuda(3).class(), "cuda");
        assert_eq!(tch::Device::from(Device::Cuda(1)), tch::Device::Cuda(1));
    }
}
