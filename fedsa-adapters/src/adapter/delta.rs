//! Server-made corrections to frozen weights (FedEx-LoRA's residual), one `[out, in]` tensor
//! per adapted module. The store belongs to the frozen base model, which every simulated
//! client shares through an `Arc`: the drifted base is held once, not once per client, and a
//! correction a client receives is the one all clients have (the server sends every client
//! the same one).

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use candle_core::{Device, Tensor};

use fedsa_core::{Error, ParamSet, Result, TensorData};

use crate::backend::Context;

/// The corrections by module name.
#[derive(Debug, Default)]
pub struct BaseDeltas {
    by_module: RwLock<BTreeMap<String, Tensor>>,
}

impl BaseDeltas {
    /// The correction of `module`, when there is one.
    pub fn get(&self, module: &str) -> Option<Tensor> {
        self.by_module
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(module)
            .cloned()
    }

    /// Sets `module`'s correction (`name` is the tensor's name, for errors).
    pub fn set(&self, name: &str, module: &str, data: &TensorData, device: &Device) -> Result<()> {
        if !data.is_finite() {
            return Err(Error::param(name, "holds NaN or infinite values"));
        }
        let t = Tensor::from_slice(data.data(), data.shape(), device)
            .ctx("writing a weight correction")?;
        self.by_module
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(module.to_string(), t);
        Ok(())
    }

    /// Every correction, as plain data under its tensor name (for exports).
    pub fn export(&self) -> Result<ParamSet> {
        let mut out = ParamSet::new();
        for (module, t) in self
            .by_module
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let data = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .ctx("reading a weight correction")?;
            out.insert(fedsa_core::base_delta_name(module), t.dims().to_vec(), data)?;
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.by_module
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}
