//! The frozen LLaMA-architecture decoder shared by every client: token embeddings, blocks of
//! RMSNorm → self-attention (rotary, grouped-query) → residual → RMSNorm → SwiGLU MLP →
//! residual, a final norm and the language-model head (the embeddings when tied). Each of the
//! seven linear layers per block can carry an adapter through the same hook as the encoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};

use fedsa_core::Result;

use crate::adapter::{BaseDeltas, Module, ModuleInfo};
use crate::decoder::config::LlamaConfig;
use crate::decoder::names::{
    EMBED, FINAL_NORM, INPUT_NORM, LM_HEAD, POST_NORM, PREFIX, layer_name, module_dims,
    weight_shapes,
};
use crate::layers::{FrozenLinear, FrozenRmsNorm, RotaryTables};
use crate::training::seeded::{normal, stream, tensor};
use crate::weights::WeightFile;

pub(crate) struct DecoderLayer {
    /// In [`Module::DECODER`] order.
    pub(crate) linears: Vec<FrozenLinear>,
    pub(crate) input_norm: FrozenRmsNorm,
    pub(crate) post_norm: FrozenRmsNorm,
}

/// The frozen pretrained decoder. Its tensors are never `Var`s and never receive gradients.
pub struct DecoderModel {
    pub(crate) config: LlamaConfig,
    pub(crate) device: Device,
    source: PathBuf,
    pub(crate) embed_tokens: Tensor,
    pub(crate) layers: Vec<DecoderLayer>,
    pub(crate) norm: FrozenRmsNorm,
    /// `[vocab, hidden]`: the embedding table itself when tied.
    pub(crate) lm_head: FrozenLinear,
    pub(crate) rotary: RotaryTables,
    /// Server-made corrections to the adapted weights (FedEx-LoRA), shared by every client.
    pub(crate) deltas: Arc<BaseDeltas>,
}

impl DecoderModel {
    /// A model with random weights (tests, benchmarks): normal(0, 0.02) matrices and RMSNorm
    /// scales near 1, all seeded by `seed`.
    pub fn random(config: &LlamaConfig, seed: u64, device: &Device) -> Result<Arc<DecoderModel>> {
        config.validate(Path::new("<random config>"))?;
        let mut tensors = HashMap::new();
        for (name, shape) in weight_shapes(config) {
            let n: usize = shape.iter().product();
            let mut rng = stream(seed, &name, 0);
            let values = if shape.len() == 1 {
                normal(&mut rng, n, 0.1)
                    .into_iter()
                    .map(|v| 1.0 + v)
                    .collect()
            } else {
                normal(&mut rng, n, 0.02)
            };
            tensors.insert(name, tensor(values, &shape, device)?);
        }
        let weights = WeightFile::from_map("<random weights>", PREFIX, tensors);
        Self::from_weights(config.clone(), &weights, device).map(Arc::new)
    }

    /// Builds the model from named tensors (Hugging Face names, `model.` prefix optional);
    /// errors name the weight file and the tensor.
    pub(crate) fn from_weights(
        config: LlamaConfig,
        w: &WeightFile,
        device: &Device,
    ) -> Result<DecoderModel> {
        config.validate(&w.path().with_file_name("config.json"))?;
        let h = config.hidden_size;
        let eps = config.rms_norm_eps;
        let norm = |name: &str| -> Result<FrozenRmsNorm> {
            Ok(FrozenRmsNorm::new(w.get(name, &[h])?, eps))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let mut linears = Vec::with_capacity(Module::DECODER.len());
            for m in Module::DECODER {
                let (inp, out) = module_dims(&config, m);
                let name = layer_name(l, &format!("{}.weight", m.path()));
                linears.push(FrozenLinear::new(w.get(&name, &[out, inp])?, None));
            }
            layers.push(DecoderLayer {
                linears,
                input_norm: norm(&layer_name(l, INPUT_NORM))?,
                post_norm: norm(&layer_name(l, POST_NORM))?,
            });
        }
        let embed_tokens = w.get(EMBED, &[config.vocab_size, h])?;
        let head = if config.tie_word_embeddings {
            embed_tokens.clone()
        } else {
            w.get(LM_HEAD, &[config.vocab_size, h])?
        };
        Ok(DecoderModel {
            deltas: Arc::default(),
            rotary: RotaryTables::new(
                config.head_dim(),
                config.rope_theta,
                config.max_position_embeddings,
                device,
            )?,
            norm: norm(FINAL_NORM)?,
            lm_head: FrozenLinear::new(head, None),
            embed_tokens,
            layers,
            source: w.path().to_path_buf(),
            device: device.clone(),
            config,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The corrections to the adapted weights every client of this model shares.
    pub fn deltas(&self) -> &Arc<BaseDeltas> {
        &self.deltas
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Where the weights came from (for messages).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The id used for padding (masked out, so any id in the vocabulary works).
    pub fn pad_token_id(&self) -> u32 {
        self.config.pad_id()
    }

    /// The frozen linear layer `module` of block `layer`.
    pub fn linear(&self, layer: usize, module: Module) -> &FrozenLinear {
        &self.layers[layer].linears[module.slot()]
    }

    /// Every adaptable linear layer, in order, named as PEFT names them
    /// (`model.layers.0.self_attn.q_proj`).
    pub fn modules(&self) -> Vec<ModuleInfo> {
        (0..self.layers.len())
            .flat_map(|layer| {
                Module::DECODER
                    .into_iter()
                    .map(move |module| (layer, module))
            })
            .map(|(layer, module)| {
                ModuleInfo::of(layer, module, "model.layers.", self.linear(layer, module))
            })
            .collect()
    }

    /// Every frozen tensor under its Hugging Face name (`model.layers.0...`, `lm_head.weight`
    /// only when untied).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let p = |n: &str| format!("{PREFIX}{n}");
        let mut out = vec![(p(EMBED), self.embed_tokens.clone())];
        for (l, layer) in self.layers.iter().enumerate() {
            for m in Module::DECODER {
                out.push((
                    p(&layer_name(l, &format!("{}.weight", m.path()))),
                    layer.linears[m.slot()].weight().clone(),
                ));
            }
            out.push((
                p(&layer_name(l, INPUT_NORM)),
                layer.input_norm.weight().clone(),
            ));
            out.push((
                p(&layer_name(l, POST_NORM)),
                layer.post_norm.weight().clone(),
            ));
        }
        out.push((p(FINAL_NORM), self.norm.weight().clone()));
        if !self.config.tie_word_embeddings {
            out.push((LM_HEAD.to_string(), self.lm_head.weight().clone()));
        }
        out
    }
}
