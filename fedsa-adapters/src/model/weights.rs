//! Reading a Hugging Face `model.safetensors`: every tensor converted to f32 on the target
//! device, looked up with or without the family prefix (`bert.`), shapes checked. Errors name
//! the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use fedsa_core::{Error, Result};

/// The tensors of one weight file (or of a random model, for tests).
pub(crate) struct WeightFile {
    path: PathBuf,
    prefix: &'static str,
    tensors: HashMap<String, Tensor>,
}

impl WeightFile {
    /// Reads every tensor of a safetensors file.
    pub(crate) fn open(path: &Path, prefix: &'static str, device: &Device) -> Result<WeightFile> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::model(path, format!("cannot read the weights: {e}")))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::model(
                path,
                format!("not a valid safetensors file (truncated or corrupt?): {e}"),
            )
        })?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let dtype = match view.dtype() {
                safetensors::Dtype::F32 => DType::F32,
                safetensors::Dtype::F16 => DType::F16,
                safetensors::Dtype::BF16 => DType::BF16,
                safetensors::Dtype::F64 => DType::F64,
                // Integer buffers (`position_ids`) are not weights.
                _ => continue,
            };
            let t = Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)
                .and_then(|t| t.to_dtype(DType::F32))
                .and_then(|t| t.to_device(device))
                .map_err(|e| Error::model(path, format!("tensor `{name}`: {e}")))?;
            tensors.insert(name, t);
        }
        Ok(WeightFile {
            path: path.to_path_buf(),
            prefix,
            tensors,
        })
    }

    /// Tensors already in memory; `label` stands for the file in errors.
    pub(crate) fn from_map(
        label: &str,
        prefix: &'static str,
        tensors: HashMap<String, Tensor>,
    ) -> WeightFile {
        WeightFile {
            path: PathBuf::from(label),
            prefix,
            tensors,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn find(&self, name: &str) -> Option<&Tensor> {
        self.tensors
            .get(name)
            .or_else(|| self.tensors.get(&format!("{}{name}", self.prefix)))
            .or_else(|| {
                // Old BERT checkpoints name LayerNorm parameters gamma/beta.
                let old = name
                    .strip_suffix("LayerNorm.weight")
                    .map(|p| format!("{p}LayerNorm.gamma"))
                    .or_else(|| {
                        name.strip_suffix("LayerNorm.bias")
                            .map(|p| format!("{p}LayerNorm.beta"))
                    })?;
                self.tensors
                    .get(&old)
                    .or_else(|| self.tensors.get(&format!("{}{old}", self.prefix)))
            })
    }

    /// A tensor that may be absent; present with the wrong shape is an error.
    pub(crate) fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        match self.find(name) {
            None => Ok(None),
            Some(t) if t.dims() == shape => Ok(Some(t.clone())),
            Some(t) => Err(Error::model(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}, the config needs {shape:?}",
                    t.dims()
                ),
            )),
        }
    }

    /// A tensor that must exist with this shape.
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_opt(name, shape)?.ok_or_else(|| {
            Error::model(
                &self.path,
                format!("tensor `{name}` (or `{}{name}`) is missing", self.prefix),
            )
        })
    }

    /// The tensor's shape, if present (for optional head weights whose size is not known yet).
    pub(crate) fn dims_of(&self, name: &str) -> Option<Vec<usize>> {
        self.find(name).map(|t| t.dims().to_vec())
    }
}
