//! The frozen encoder shared by every client: embeddings, then self-attention and feed-forward
//! blocks whose six linear layers can each carry an adapter (through a hook). BERT and RoBERTa
//! share this body; they differ in position ids ([`super::bert`], [`super::roberta`]) and head.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};

use fedsa_core::{Batch, Error, Result};

use crate::adapter::{AdaptFn, AdaptedFn, BaseDeltas, Module, ModuleInfo};
use crate::backend::Context;
use crate::encoder::config::{Activation, EncoderConfig, Family};
use crate::encoder::head::pretrained_head_names;
use crate::encoder::{bert, roberta};
use crate::layers::{FrozenLayerNorm, FrozenLinear, attention, frozen_feed_forward_norm};
use crate::training::seeded::{normal, stream, tensor};
use crate::weights::WeightFile;

struct EncoderLayer {
    linears: Vec<FrozenLinear>,
    attention_norm: FrozenLayerNorm,
    output_norm: FrozenLayerNorm,
}

/// A padded batch as tensors on the model's device.
pub struct EncoderInput {
    pub input_ids: Tensor,
    pub type_ids: Tensor,
    pub position_ids: Tensor,
    /// `[batch, 1, 1, seq]`: 0 on real tokens, a large negative number on padding.
    pub mask_bias: Tensor,
    pub batch: usize,
    pub seq_len: usize,
}

/// The frozen pretrained encoder. Its tensors are never `Var`s and never receive gradients.
pub struct BaseModel {
    config: EncoderConfig,
    family: Family,
    activation: Activation,
    device: Device,
    source: PathBuf,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embedding_norm: FrozenLayerNorm,
    layers: Vec<EncoderLayer>,
    pretrained_head: BTreeMap<String, Tensor>,
    /// Server-made corrections to the adapted weights (FedEx-LoRA), shared by every client.
    deltas: Arc<BaseDeltas>,
}

/// Which positions a block computes its output for.
#[derive(Clone, Copy)]
enum Positions {
    All,
    /// The first token of each sequence (what a classification head reads).
    First,
}

/// Additive attention bias on padded keys: large enough to zero them after the softmax.
const MASKED: f32 = -1e9;

impl BaseModel {
    /// Reads `config.json` and `model.safetensors` from a Hugging Face model folder.
    pub fn load(dir: &Path, device: &Device) -> Result<Arc<BaseModel>> {
        let config = EncoderConfig::load(&dir.join("config.json"))?;
        let family = config.family()?;
        let weights = WeightFile::open(
            &dir.join("model.safetensors"),
            family.weight_prefix(),
            device,
        )?;
        Self::from_weights(config, &weights, device).map(Arc::new)
    }

    /// A model with random weights (tests, benchmarks): normal(0, initializer_range) matrices,
    /// small random biases and LayerNorm parameters near (1, 0), all seeded by `seed`.
    pub fn random(config: &EncoderConfig, seed: u64, device: &Device) -> Result<Arc<BaseModel>> {
        config.validate(Path::new("<random config>"))?;
        let family = config.family()?;
        let mut tensors = HashMap::new();
        for (name, shape) in weight_shapes(config) {
            let n: usize = shape.iter().product();
            let mut rng = stream(seed, &name, 0);
            let values = if name.ends_with("LayerNorm.weight") {
                normal(&mut rng, n, 0.1)
                    .into_iter()
                    .map(|v| 1.0 + v)
                    .collect()
            } else {
                normal(&mut rng, n, config.initializer_range)
            };
            tensors.insert(name, tensor(values, &shape, device)?);
        }
        let weights = WeightFile::from_map("<random weights>", family.weight_prefix(), tensors);
        Self::from_weights(config.clone(), &weights, device).map(Arc::new)
    }

    fn from_weights(config: EncoderConfig, w: &WeightFile, device: &Device) -> Result<BaseModel> {
        config.validate(&w.path().with_file_name("config.json"))?;
        let family = config.family()?;
        let activation = config.activation()?;
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let norm = |p: &str| -> Result<FrozenLayerNorm> {
            Ok(FrozenLayerNorm::new(
                w.get(&format!("{p}.weight"), &[h])?,
                w.get(&format!("{p}.bias"), &[h])?,
                eps,
            ))
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let mut linears = Vec::with_capacity(6);
            for m in Module::ENCODER {
                let (inp, out) = module_dims(&config, m);
                let p = format!("encoder.layer.{l}.{}", m.path());
                linears.push(FrozenLinear::new(
                    w.get(&format!("{p}.weight"), &[out, inp])?,
                    Some(w.get(&format!("{p}.bias"), &[out])?),
                ));
            }
            layers.push(EncoderLayer {
                linears,
                attention_norm: norm(&format!("encoder.layer.{l}.attention.output.LayerNorm"))?,
                output_norm: norm(&format!("encoder.layer.{l}.output.LayerNorm"))?,
            });
        }
        let mut pretrained_head = BTreeMap::new();
        for name in pretrained_head_names(family) {
            if let Some(dims) = w.dims_of(name)
                && let Some(t) = w.get_opt(name, &dims)?
            {
                pretrained_head.insert(name.to_string(), t);
            }
        }
        Ok(BaseModel {
            deltas: Arc::default(),
            word_embeddings: w.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position_embeddings: w.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type_embeddings: w.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            pretrained_head,
            source: w.path().to_path_buf(),
            family,
            activation,
            device: device.clone(),
            config,
        })
    }

    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// The corrections to the adapted weights every client of this model shares.
    pub fn deltas(&self) -> &Arc<BaseDeltas> {
        &self.deltas
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn pad_token_id(&self) -> u32 {
        self.config.pad_token_id
    }

    /// A head tensor shipped with the checkpoint (BERT's pooler), by Hugging Face name.
    pub fn pretrained_head(&self, name: &str) -> Option<&Tensor> {
        self.pretrained_head.get(name)
    }

    /// The frozen linear layer `module` of block `layer`.
    pub fn linear(&self, layer: usize, module: Module) -> &FrozenLinear {
        &self.layers[layer].linears[module.slot()]
    }

    /// Every adaptable linear layer, in order.
    pub fn modules(&self) -> Vec<ModuleInfo> {
        (0..self.layers.len())
            .flat_map(|layer| {
                Module::ENCODER
                    .into_iter()
                    .map(move |module| (layer, module))
            })
            .map(|(layer, module)| {
                ModuleInfo::of(layer, module, "encoder.layer.", self.linear(layer, module))
            })
            .collect()
    }

    /// Every frozen tensor under its Hugging Face name (no family prefix).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![
            (
                "embeddings.word_embeddings.weight".to_string(),
                self.word_embeddings.clone(),
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                self.position_embeddings.clone(),
            ),
            (
                "embeddings.token_type_embeddings.weight".into(),
                self.token_type_embeddings.clone(),
            ),
            (
                "embeddings.LayerNorm.weight".into(),
                self.embedding_norm.gamma().clone(),
            ),
            (
                "embeddings.LayerNorm.bias".into(),
                self.embedding_norm.beta().clone(),
            ),
        ];
        for (l, layer) in self.layers.iter().enumerate() {
            for m in Module::ENCODER {
                let lin = &layer.linears[m.slot()];
                let p = format!("encoder.layer.{l}.{}", m.path());
                out.push((format!("{p}.weight"), lin.weight().clone()));
                if let Some(b) = lin.bias() {
                    out.push((format!("{p}.bias"), b.clone()));
                }
            }
            for (p, n) in [
                ("attention.output.LayerNorm", &layer.attention_norm),
                ("output.LayerNorm", &layer.output_norm),
            ] {
                out.push((format!("encoder.layer.{l}.{p}.weight"), n.gamma().clone()));
                out.push((format!("encoder.layer.{l}.{p}.bias"), n.beta().clone()));
            }
        }
        out.extend(
            self.pretrained_head
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    /// Checks a batch against the vocabulary and position table and moves it to the device.
    pub fn inputs(&self, batch: &Batch) -> Result<EncoderInput> {
        let c = &self.config;
        let (b, s) = (batch.batch, batch.seq_len);
        if b == 0 || s == 0 {
            return Err(Error::backend("encoding a batch", "the batch is empty"));
        }
        if let Some(id) = batch
            .input_ids
            .iter()
            .find(|&&i| i as usize >= c.vocab_size)
        {
            return Err(Error::backend(
                "encoding a batch",
                format!(
                    "token id {id} is outside the vocabulary of {}",
                    c.vocab_size
                ),
            ));
        }
        let position_ids = match self.family {
            Family::Bert => bert::position_ids(batch),
            Family::Roberta => roberta::position_ids(batch, c.pad_token_id),
        };
        if let Some(p) = position_ids
            .iter()
            .find(|&&p| p as usize >= c.max_position_embeddings)
        {
            return Err(Error::backend(
                "encoding a batch",
                format!(
                    "sequence of {s} tokens needs position {p}, the model has {} (lower model.max_length)",
                    c.max_position_embeddings
                ),
            ));
        }
        // RoBERTa checkpoints have a single token type: whatever the tokenizer said, use 0.
        let type_ids: Vec<u32> = if c.type_vocab_size == 1 {
            vec![0; b * s]
        } else {
            if let Some(t) = batch
                .type_ids
                .iter()
                .find(|&&t| t as usize >= c.type_vocab_size)
            {
                return Err(Error::backend(
                    "encoding a batch",
                    format!("token type {t} but the model has {}", c.type_vocab_size),
                ));
            }
            batch.type_ids.clone()
        };
        let bias: Vec<f32> = batch
            .attention_mask
            .iter()
            .map(|&m| if m == 0 { MASKED } else { 0.0 })
            .collect();
        let dev = &self.device;
        let ids = |v: Vec<u32>| Tensor::from_vec(v, (b, s), dev).ctx("batch to device");
        Ok(EncoderInput {
            input_ids: ids(batch.input_ids.clone())?,
            type_ids: ids(type_ids)?,
            position_ids: ids(position_ids)?,
            mask_bias: Tensor::from_vec(bias, (b, 1, 1, s), dev).ctx("batch to device")?,
            batch: b,
            seq_len: s,
        })
    }

    /// The sequence output `[batch, seq, hidden]`. `adapt(layer, module, x, base, w0)` returns
    /// each linear layer's output given its input and frozen output (identity: no adapter).
    pub fn forward(&self, input: &EncoderInput, adapt: &mut AdaptFn<'_>) -> Result<Tensor> {
        self.forward_adapted(input, adapt, &|_, _| true)
    }

    /// [`BaseModel::forward`] told which modules carry adapters: `adapt` is still called for
    /// every linear layer that does; an attention output layer that does not runs with its
    /// residual and norm as one node (`FrozenLayerNorm::forward_linear_residual`), and so does
    /// a feed-forward block where neither linear does (`layers::frozen_feed_forward_norm`):
    /// the same values with less work.
    pub fn forward_adapted(
        &self,
        input: &EncoderInput,
        adapt: &mut AdaptFn<'_>,
        adapted: &AdaptedFn<'_>,
    ) -> Result<Tensor> {
        self.run(input, adapt, adapted, Positions::All)
    }

    /// [`BaseModel::forward_adapted`] for the first token only, `[batch, 1, hidden]`: what a
    /// classification head reads. The last block attends from that token alone and runs its
    /// attention output and feed-forward layers on it alone (every earlier block needs all
    /// positions as keys and values), which saves most of the last block's work: the same
    /// values as the full output's first position.
    pub fn forward_first_token(
        &self,
        input: &EncoderInput,
        adapt: &mut AdaptFn<'_>,
        adapted: &AdaptedFn<'_>,
    ) -> Result<Tensor> {
        self.run(input, adapt, adapted, Positions::First)
    }

    fn run(
        &self,
        input: &EncoderInput,
        adapt: &mut AdaptFn<'_>,
        adapted: &AdaptedFn<'_>,
        last: Positions,
    ) -> Result<Tensor> {
        let (b, s) = (input.batch, input.seq_len);
        let h = self.config.hidden_size;
        let gather = |table: &Tensor, ids: &Tensor| -> Result<Tensor> {
            ids.flatten_all()
                .and_then(|ids| table.index_select(&ids, 0))
                .and_then(|t| t.reshape((b, s, h)))
                .ctx("embeddings")
        };
        let words = gather(&self.word_embeddings, &input.input_ids)?;
        let positions = gather(&self.position_embeddings, &input.position_ids)?;
        let types = gather(&self.token_type_embeddings, &input.type_ids)?;
        let emb = (words + positions)
            .and_then(|e| e + types)
            .ctx("embeddings")?;
        let mut x = self.embedding_norm.forward(&emb)?;
        let n = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let out = if l + 1 == n { last } else { Positions::All };
            x = self.block(l, layer, &x, &input.mask_bias, adapt, adapted, out)?;
        }
        Ok(x)
    }

    /// One encoder block; its output has the positions `out` asks for (keys and values always
    /// come from all of `x`).
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        l: usize,
        layer: &EncoderLayer,
        x: &Tensor,
        mask_bias: &Tensor,
        adapt: &mut AdaptFn<'_>,
        adapted: &AdaptedFn<'_>,
        out: Positions,
    ) -> Result<Tensor> {
        let c = &self.config;
        let mut lin = |m: Module, input: &Tensor| -> Result<Tensor> {
            let frozen = &layer.linears[m.slot()];
            let base = frozen.forward(input)?;
            adapt(l, m, input, base, frozen.weight())
        };
        let queries = match out {
            Positions::All => x.clone(),
            Positions::First => x
                .narrow(1, 0, 1)
                .and_then(|t| t.contiguous())
                .ctx("first token")?,
        };
        let q = lin(Module::Query, &queries)?;
        let k = lin(Module::Key, x)?;
        let v = lin(Module::Value, x)?;
        let context = attention(&q, &k, &v, Some(mask_bias), c.num_attention_heads)?;
        // The residual stream continues at the query positions.
        let x = if adapted(l, Module::AttentionOutput) {
            let attn = lin(Module::AttentionOutput, &context)?;
            layer.attention_norm.forward_residual(&attn, &queries)?
        } else {
            let frozen = &layer.linears[Module::AttentionOutput.slot()];
            layer
                .attention_norm
                .forward_linear_residual(&context, frozen, &queries)?
        };
        let frozen_ffn = matches!(self.activation, Activation::Gelu)
            && !adapted(l, Module::Intermediate)
            && !adapted(l, Module::Output);
        if frozen_ffn {
            return frozen_feed_forward_norm(
                &x,
                &layer.linears[Module::Intermediate.slot()],
                &layer.linears[Module::Output.slot()],
                &layer.output_norm,
            );
        }
        let inter = lin(Module::Intermediate, &x)?;
        let inter = match self.activation {
            Activation::Gelu => crate::layers::gelu_erf(&inter)?,
            Activation::GeluTanh => inter.gelu().ctx("activation")?,
            Activation::Relu => inter.relu().ctx("activation")?,
        };
        let out = lin(Module::Output, &inter)?;
        layer.output_norm.forward_residual(&out, &x)
    }

    /// Where the weights came from (for messages).
    pub fn source(&self) -> &Path {
        &self.source
    }
}

/// `(in, out)` of a module under `config`.
fn module_dims(config: &EncoderConfig, m: Module) -> (usize, usize) {
    let (h, i) = (config.hidden_size, config.intermediate_size);
    match m {
        Module::Intermediate => (h, i),
        Module::Output => (i, h),
        _ => (h, h),
    }
}

/// Every base tensor's Hugging Face name and shape.
fn weight_shapes(c: &EncoderConfig) -> Vec<(String, Vec<usize>)> {
    let h = c.hidden_size;
    let mut out = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            vec![c.vocab_size, h],
        ),
        (
            "embeddings.position_embeddings.weight".into(),
            vec![c.max_position_embeddings, h],
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![c.type_vocab_size, h],
        ),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for l in 0..c.num_hidden_layers {
        for m in Module::ENCODER {
            let (inp, o) = module_dims(c, m);
            out.push((
                format!("encoder.layer.{l}.{}.weight", m.path()),
                vec![o, inp],
            ));
            out.push((format!("encoder.layer.{l}.{}.bias", m.path()), vec![o]));
        }
        for p in ["attention.output.LayerNorm", "output.LayerNorm"] {
            out.push((format!("encoder.layer.{l}.{p}.weight"), vec![h]));
            out.push((format!("encoder.layer.{l}.{p}.bias"), vec![h]));
        }
    }
    out
}
