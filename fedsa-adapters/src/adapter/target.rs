//! The linear layers an adapter can target: their names in Hugging Face's layout ([`Module`]),
//! what a model reports about each ([`ModuleInfo`]: name, sizes, frozen weight), and the hook
//! through which a model's forward hands each layer's output to the adapters ([`AdaptFn`]).
//! Shared by the encoder and the decoder, so neither model's folder owns it.

use candle_core::Tensor;

use fedsa_core::Result;

use crate::layers::FrozenLinear;

/// An adaptable linear layer inside a transformer block, named as in Hugging Face: the six of
/// an encoder block (BERT, RoBERTa) and the seven of a LLaMA decoder block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    Query,
    Key,
    Value,
    AttentionOutput,
    Intermediate,
    Output,
    QProj,
    KProj,
    VProj,
    OProj,
    GateProj,
    UpProj,
    DownProj,
}

impl Module {
    /// The linear layers of an encoder block, in order.
    pub const ENCODER: [Module; 6] = [
        Module::Query,
        Module::Key,
        Module::Value,
        Module::AttentionOutput,
        Module::Intermediate,
        Module::Output,
    ];

    /// The linear layers of a decoder block, in order.
    pub const DECODER: [Module; 7] = [
        Module::QProj,
        Module::KProj,
        Module::VProj,
        Module::OProj,
        Module::GateProj,
        Module::UpProj,
        Module::DownProj,
    ];

    /// The path inside a layer (`attention.self.query`, `self_attn.q_proj`).
    pub fn path(self) -> &'static str {
        match self {
            Module::Query => "attention.self.query",
            Module::Key => "attention.self.key",
            Module::Value => "attention.self.value",
            Module::AttentionOutput => "attention.output.dense",
            Module::Intermediate => "intermediate.dense",
            Module::Output => "output.dense",
            Module::QProj => "self_attn.q_proj",
            Module::KProj => "self_attn.k_proj",
            Module::VProj => "self_attn.v_proj",
            Module::OProj => "self_attn.o_proj",
            Module::GateProj => "mlp.gate_proj",
            Module::UpProj => "mlp.up_proj",
            Module::DownProj => "mlp.down_proj",
        }
    }

    /// The position within its block's list ([`Module::ENCODER`] or [`Module::DECODER`]).
    pub(crate) fn slot(self) -> usize {
        match self {
            Module::Query | Module::QProj => 0,
            Module::Key | Module::KProj => 1,
            Module::Value | Module::VProj => 2,
            Module::AttentionOutput | Module::OProj => 3,
            Module::Intermediate | Module::GateProj => 4,
            Module::Output | Module::UpProj => 5,
            Module::DownProj => 6,
        }
    }
}

/// One adaptable linear layer of a model.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    pub layer: usize,
    pub module: Module,
    /// The full PEFT-style name, `encoder.layer.0.attention.self.query` or
    /// `model.layers.0.self_attn.q_proj`.
    pub name: String,
    pub inp: usize,
    pub out: usize,
    /// The frozen weight `W0` `[out, in]` (for init rules that read it).
    pub weight: Tensor,
}

impl ModuleInfo {
    /// The layer `module` of block `layer`, named `{prefix}{layer}.{path}`.
    pub(crate) fn of(layer: usize, module: Module, prefix: &str, linear: &FrozenLinear) -> Self {
        let (inp, out) = linear.dims();
        ModuleInfo {
            layer,
            module,
            name: format!("{prefix}{layer}.{}", module.path()),
            inp,
            out,
            weight: linear.weight().clone(),
        }
    }
}

/// The adapter hook a model's forward calls on every adaptable layer (e.g.
/// [`crate::BaseModel::forward`]): `(layer, module, input, frozen output, W0)` to
/// the layer's output.
pub type AdaptFn<'a> = dyn FnMut(usize, Module, &Tensor, Tensor, &Tensor) -> Result<Tensor> + 'a;

/// Whether `(layer, module)` carries an adapter, for [`crate::BaseModel::forward_adapted`].
pub type AdaptedFn<'a> = dyn Fn(usize, Module) -> bool + 'a;
