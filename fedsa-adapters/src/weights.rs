//! Reading a Hugging Face `model.safetensors` (or the shards a `model.safetensors.index.json`
//! lists): every tensor converted to f32 on the target device, looked up with or without the
//! family prefix (`bert.`, `model.`), shapes checked. Errors name the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use fedsa_core::{Error, Result};

/// The tensors of one weight file, or of the shards of one index (or of a random model).
pub(crate) struct WeightFile {
    path: PathBuf,
    prefix: &'static str,
    tensors: HashMap<String, Tensor>,
    /// The shard each tensor came from, when there are several files.
    sources: HashMap<String, PathBuf>,
}

/// Every floating-point tensor of a safetensors file, as f32 on `device`.
fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
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
    Ok(tensors)
}

impl WeightFile {
    /// Reads every tensor of a safetensors file.
    pub(crate) fn open(path: &Path, prefix: &'static str, device: &Device) -> Result<WeightFile> {
        Ok(WeightFile {
            path: path.to_path_buf(),
            prefix,
            tensors: read_tensors(path, device)?,
            sources: HashMap::new(),
        })
    }

    /// Reads the shards a `model.safetensors.index.json` maps tensors to (`weight_map`);
    /// shard paths are relative to the index.
    pub(crate) fn open_sharded(
        index: &Path,
        prefix: &'static str,
        device: &Device,
    ) -> Result<WeightFile> {
        let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::model(index, format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| Error::model(index, "no `weight_map` object"))?;
        let mut shards: Vec<&str> = Vec::new();
        for (name, file) in map {
            let file = file.as_str().ok_or_else(|| {
                Error::model(
                    index,
                    format!("weight_map: `{name}` does not map to a file name"),
                )
            })?;
            if !shards.contains(&file) {
                shards.push(file);
            }
        }
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut tensors = HashMap::new();
        let mut sources = HashMap::new();
        for shard in shards {
            let path = dir.join(shard);
            for (name, t) in read_tensors(&path, device)? {
                sources.insert(name.clone(), path.clone());
                tensors.insert(name, t);
            }
        }
        Ok(WeightFile {
            path: index.to_path_buf(),
            prefix,
            tensors,
            sources,
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
            sources: HashMap::new(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The tensor and its stored name.
    fn find(&self, name: &str) -> Option<(&str, &Tensor)> {
        let get = |n: &str| self.tensors.get_key_value(n).map(|(k, t)| (k.as_str(), t));
        get(name)
            .or_else(|| get(&format!("{}{name}", self.prefix)))
            .or_else(|| {
                // Old BERT checkpoints name LayerNorm parameters gamma/beta.
                let old = name
                    .strip_suffix("LayerNorm.weight")
                    .map(|p| format!("{p}LayerNorm.gamma"))
                    .or_else(|| {
                        name.strip_suffix("LayerNorm.bias")
                            .map(|p| format!("{p}LayerNorm.beta"))
                    })?;
                get(&old).or_else(|| get(&format!("{}{old}", self.prefix)))
            })
    }

    /// A tensor that may be absent; present with the wrong shape is an error.
    pub(crate) fn get_opt(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        match self.find(name) {
            None => Ok(None),
            Some((_, t)) if t.dims() == shape => Ok(Some(t.clone())),
            Some((stored, t)) => Err(Error::model(
                self.sources.get(stored).unwrap_or(&self.path),
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
        self.find(name).map(|(_, t)| t.dims().to_vec())
    }
}
