//! The burn backends policy-lab runs on, and the `--device cpu|flex|wgpu|cuda` choice.
//!
//! * `cpu`: `Autodiff<NdArray>`, always built.
//! * `flex`: `Autodiff<Flex>`, burn's newer CPU backend, built with `--features flex`: its
//!   matrix products use every core when they are large (at least 192^3 multiply-adds), so
//!   language models of 7M parameters and more train faster on it (BENCHMARKS.md).
//! * `wgpu`: `Autodiff<Wgpu>` (Vulkan, Metal, DX12; or llvmpipe, a software Vulkan driver, on
//!   a machine without a GPU), built with `--features wgpu`.
//! * `cuda`: `Autodiff<Cuda>`, built with `--features cuda`; needs an NVIDIA driver at run
//!   time (no CUDA toolkit is needed to build).
//!
//! Algorithm code is generic over `B: AutodiffBackend`; only the entry point picks one.

use std::fmt;
use std::str::FromStr;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, ElementConversion, Tensor};

// ANCHOR: gpus_backends
/// The CPU backend, with automatic differentiation.
pub type Cpu = burn::backend::Autodiff<burn::backend::NdArray>;
/// burn's Flex CPU backend, with automatic differentiation.
#[cfg(feature = "flex")]
pub type Flex = burn::backend::Autodiff<burn::backend::Flex>;
/// The wgpu backend, with automatic differentiation.
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Autodiff<burn::backend::Wgpu>;
/// The CUDA backend, with automatic differentiation.
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Autodiff<burn::backend::Cuda>;
// ANCHOR_END: gpus_backends

/// The CPU backend without automatic differentiation: for evaluating and playing a policy,
/// where no gradient is needed and an autodiff graph would only grow.
pub type Inference = burn::backend::NdArray;

/// Where tensors live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Flex,
    Wgpu,
    Cuda,
}

/// Why a device name was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DeviceError {
    #[error("unknown device '{0}'; use cpu, flex, wgpu or cuda")]
    Unknown(String),
    #[error("this build has no {0} backend; rebuild with `--features {0}`")]
    NotBuilt(&'static str),
}

impl Device {
    /// The devices this build can use.
    pub fn available() -> Vec<Device> {
        [Device::Cpu, Device::Flex, Device::Wgpu, Device::Cuda]
            .into_iter()
            .filter(|d| d.is_built())
            .collect()
    }
    /// Whether this build includes the backend.
    pub fn is_built(self) -> bool {
        match self {
            Device::Cpu => true,
            Device::Flex => cfg!(feature = "flex"),
            Device::Wgpu => cfg!(feature = "wgpu"),
            Device::Cuda => cfg!(feature = "cuda"),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Flex => "flex",
            Device::Wgpu => "wgpu",
            Device::Cuda => "cuda",
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Device {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, DeviceError> {
        let device = match s.to_ascii_lowercase().as_str() {
            "cpu" | "ndarray" => Device::Cpu,
            "flex" => Device::Flex,
            "wgpu" => Device::Wgpu,
            "cuda" => Device::Cuda,
            _ => return Err(DeviceError::Unknown(s.to_string())),
        };
        if device.is_built() {
            Ok(device)
        } else {
            Err(DeviceError::NotBuilt(device.name()))
        }
    }
}

/// A small computation on backend `B`: `sum(A·Aᵀ)` for a fixed 16×16 random `A`, to show a
/// backend works end to end.
pub fn smoke_test<B: Backend>(device: &B::Device) -> f32 {
    B::seed(device, 7);
    let a = Tensor::<B, 2>::random([16, 16], Distribution::Uniform(-1.0, 1.0), device);
    a.clone()
        .matmul(a.transpose())
        .sum()
        .into_scalar()
        .elem::<f32>()
}

// ANCHOR: gpus_on_backend
/// Evaluates `$body` with the type `$B` standing for the backend that `$device` names:
/// `on_backend!(config.device, B => train::<B>(config, ..))`. This is the one place where a
/// [`Device`] value becomes a backend type. It gives `Ok(body)`, or
/// `Err(DeviceError::NotBuilt)` for a backend this build does not include.
#[rustfmt::skip] // one line a backend, as a table
macro_rules! on_backend {
    ($device:expr, $B:ident => $body:expr) => {
        match $device {
            $crate::backend::Device::Cpu => { type $B = $crate::backend::Cpu; Ok($body) }
            #[cfg(feature = "flex")]
            $crate::backend::Device::Flex => { type $B = $crate::backend::Flex; Ok($body) }
            #[cfg(feature = "wgpu")]
            $crate::backend::Device::Wgpu => { type $B = $crate::backend::Wgpu; Ok($body) }
            #[cfg(feature = "cuda")]
            $crate::backend::Device::Cuda => { type $B = $crate::backend::Cuda; Ok($body) }
            #[allow(unreachable_patterns)]
            other => Err($crate::backend::DeviceError::NotBuilt(other.name())),
        }
    };
}
pub(crate) use on_backend;
// ANCHOR_END: gpus_on_backend

/// Runs [`smoke_test`] on `device`; returns the value it computed.
pub fn check_device(device: Device) -> Result<f32, DeviceError> {
    on_backend!(device, B => smoke_test::<B>(&Default::default()))
}

/// Builds a module with `init` right after seeding `B`'s random-number generator with
/// `seed`, and draws all its weights before anyone else may, holding a lock throughout.
///
/// burn's generator is one per process, not one per model, and burn draws a parameter's
/// initial values lazily, at its first use. Two learners made at the same time on two
/// threads (tests run in parallel) would otherwise draw from each other's seed, and a seed
/// would no longer give the same weights.
pub fn seeded<B: Backend, M: burn::module::Module<B>>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce() -> M,
) -> M {
    struct Touch;
    impl<B: Backend> burn::module::ModuleVisitor<B> for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
            let _ = param.val();
        }
    }
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    let module = init();
    module.visit(&mut Touch);
    module
}

/// Keeps freed memory in the process instead of handing it back to the kernel at once.
///
/// glibc's `malloc` gives large buffers their own `mmap` and returns them with `munmap` when
/// freed; a training step allocates and frees such tensors by the thousand, and the kernel
/// then spends its time zeroing fresh pages (a third of a language-model step's CPU time,
/// measured with `perf`). Raising the thresholds makes `malloc` reuse those pages: GRPO's
/// step on the benchmark shape goes from 0.63 s to 0.50 s (BENCHMARKS.md). It changes no
/// numbers, only where memory comes from. Call it first thing in `main`; elsewhere than
/// Linux with glibc it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// `n` devices of backend `B`'s default kind, for data-parallel training: GPUs `0..n` on
/// `cuda` and `wgpu`; on the CPU backend every index is the one CPU device, so the peers
/// share its cores (useful to test, not faster).
// ANCHOR: gpus_devices
pub fn devices<B: Backend>(n: usize) -> Vec<B::Device> {
    use burn::tensor::backend::{Device as _, DeviceId};
    let first = B::Device::default().to_id();
    (0..n)
        .map(|i| {
            B::Device::from_id(DeviceId {
                type_id: first.type_id,
                index_id: i as u16,
            })
        })
        .collect()
}
// ANCHOR_END: gpus_devices
