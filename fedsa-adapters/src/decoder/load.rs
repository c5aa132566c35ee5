//! Loading a decoder from a Hugging Face folder: `config.json` plus `model.safetensors`, or the
//! shards a `model.safetensors.index.json` lists. Names carry the `model.` prefix as
//! `transformers` writes them (unprefixed names are accepted too).

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use fedsa_core::{Error, Result};

use crate::decoder::config::LlamaConfig;
use crate::decoder::model::DecoderModel;
use crate::decoder::names::PREFIX;
use crate::weights::WeightFile;

impl DecoderModel {
    /// Reads a Hugging Face model folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Arc<DecoderModel>> {
        let config = LlamaConfig::load(&dir.join("config.json"))?;
        let single = dir.join("model.safetensors");
        let index = dir.join("model.safetensors.index.json");
        let weights = if single.exists() {
            WeightFile::open(&single, PREFIX, device)?
        } else if index.exists() {
            WeightFile::open_sharded(&index, PREFIX, device)?
        } else {
            return Err(Error::model(
                &single,
                "missing (and no model.safetensors.index.json next to it)",
            ));
        };
        DecoderModel::from_weights(config, &weights, device).map(Arc::new)
    }
}
