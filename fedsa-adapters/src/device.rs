//! Choosing the candle device from the config's `device` string (`cpu`, `cuda:N`).

use candle_core::Device;
use fedsa_core::{Error, Result};

/// The device named `name`: `cpu`, or `cuda:N` when built with the `cuda` feature.
pub fn device(name: &str) -> Result<Device> {
    if name == "cpu" {
        return Ok(Device::Cpu);
    }
    let Some(ordinal) = fedsa_core::config::parse_cuda_ordinal(name) else {
        return Err(Error::run_config(
            "device",
            format!("`{name}` is neither `cpu` nor `cuda:N`"),
        ));
    };
    cuda(ordinal, name)
}

#[cfg(feature = "cuda")]
fn cuda(ordinal: usize, name: &str) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| Error::backend(format!("opening device {name}"), e))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_ordinal: usize, name: &str) -> Result<Device> {
    Err(Error::run_config(
        "device",
        format!(
            "`{name}` needs a build with CUDA support (cargo build --features fedsa-adapters/cuda)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_works_and_bad_names_are_errors() {
        assert!(device("cpu").unwrap().is_cpu());
        let err = device("gpu0").unwrap_err().to_string();
        assert!(err.contains("gpu0") && err.contains("device"), "{err}");
        #[cfg(not(feature = "cuda"))]
        {
            let err = device("cuda:0").unwrap_err().to_string();
            assert!(err.contains("cuda"), "{err}");
        }
    }
}
