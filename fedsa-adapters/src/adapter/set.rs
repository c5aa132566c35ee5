//! An adapter spec instantiated on a model: which layers carry it, their frozen tensors, the
//! initial values of their trainable ones, the program compiled once for all of them, and the
//! forward pass of one adapted layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{Device, Tensor};

use fedsa_core::config::AdapterConfig;
use fedsa_core::{BASE_DELTA_SUFFIX, Error, LowRankModule, ParamSet, Result, Role};

use crate::adapter::ctx::ForwardCtx;
use crate::adapter::delta::BaseDeltas;
use crate::adapter::plan::{BASE, Body, Plan, PlanKind, Reg, W0, X, compile, param_reg};
use crate::adapter::program::{OpEnv, run};
use crate::adapter::shape::Dims;
use crate::adapter::spec::{AdapterSpec, InitRule, ParamSpec, check_adapter_config, check_program};
use crate::adapter::target::{Module, ModuleInfo};
use crate::backend::Context;
use crate::encoder::BaseModel;
use crate::training::seeded::{kaiming_bound, normal, stream, tensor, uniform};

mod merge;
mod restart;

/// A trainable tensor's name (PEFT style), role and initial value.
pub struct InitialParam {
    pub name: String,
    pub role: Role,
    pub value: Tensor,
}

struct LayerAdapter {
    /// The module's full name and its weight's `[out, in]`.
    module: String,
    shape: [usize; 2],
    /// Frozen per-layer tensors by register.
    frozen: Vec<(Reg, Tensor)>,
    /// Trainable tensors: register → full (PEFT) name.
    trainable: Vec<(Reg, String)>,
    /// Resolved `len` of each `slice` op (0 for other ops).
    slice_lens: Vec<usize>,
    /// The personal adapter's factors' full names (FedDPA), stacked onto the fused node's
    /// `a` and `b` registers in the forward.
    personal: Option<[String; 2]>,
}

/// The spec on every targeted linear layer.
pub struct AdapterSet {
    spec: AdapterSpec,
    plan: Plan,
    scale: f64,
    /// The configured rank `r`.
    rank: usize,
    dropout: f64,
    layers: BTreeMap<(usize, Module), LayerAdapter>,
    shared: Vec<(String, Tensor)>,
    /// The register of each `shared` tensor.
    shared_regs: Vec<Reg>,
    /// Corrections to the frozen weights, shared with every client of the same base.
    deltas: Arc<BaseDeltas>,
    device: Device,
}

impl AdapterSet {
    /// Places `spec` on the encoder's modules that `adapter.target_modules` matches.
    pub fn build(
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        base: &BaseModel,
        seed: u64,
    ) -> Result<(AdapterSet, Vec<InitialParam>)> {
        Self::build_on(
            spec,
            adapter,
            &base.modules(),
            base.device(),
            seed,
            Arc::clone(base.deltas()),
        )
    }

    /// Places `spec` on the `modules` (any model's) that `adapter.target_modules` matches (PEFT
    /// rule: the module's full name equals a target or ends with `.target`); initial values
    /// depend only on `seed` and each tensor's name. `deltas` is the base model's store of
    /// frozen-weight corrections.
    pub fn build_on(
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        modules: &[ModuleInfo],
        device: &Device,
        seed: u64,
        deltas: Arc<BaseDeltas>,
    ) -> Result<(AdapterSet, Vec<InitialParam>)> {
        check_adapter_config(adapter)?;
        let source = format!("adapter `{}`", spec.name);
        spec.validate(&source)?;
        let plan = compile(spec)?;
        let mut targets = Vec::new();
        for t in &adapter.target_modules {
            let hits: Vec<_> = modules
                .iter()
                .filter(|m| m.name == *t || m.name.ends_with(&format!(".{t}")))
                .collect();
            if hits.is_empty() {
                return Err(Error::run_config(
                    "adapter.target_modules",
                    format!(
                        "`{t}` matches no linear layer of the model (try {})",
                        module_hint(modules)
                    ),
                ));
            }
            targets.extend(hits);
        }
        targets.sort_by_key(|m| (m.layer, m.module));
        targets.dedup_by_key(|m| (m.layer, m.module));
        let in_max = targets.iter().map(|m| m.inp).max().unwrap_or(1);
        let out_max = targets.iter().map(|m| m.out).max().unwrap_or(1);
        let rank = adapter.rank;

        let (mut shared, mut shared_regs) = (Vec::new(), Vec::new());
        let shared_dims = Dims {
            inp: in_max,
            out: out_max,
            rank,
            in_max,
            out_max,
        };
        for (i, p) in spec.params.iter().enumerate().filter(|(_, p)| p.shared) {
            let name = format!("shared.{}", p.peft_name);
            let value = init_param(p, &name, &shared_dims, seed, None, device)?;
            shared.push((p.name.clone(), value));
            shared_regs.push(param_reg(i));
        }

        let mut layers = BTreeMap::new();
        let mut initial = Vec::new();
        for m in &targets {
            let dims = Dims {
                inp: m.inp,
                out: m.out,
                rank,
                in_max,
                out_max,
            };
            check_program(spec, &dims, &format!("{source} on {}", m.name))?;
            let w0 = &m.weight;
            let mut la = LayerAdapter {
                module: m.name.clone(),
                shape: [m.out, m.inp],
                frozen: Vec::new(),
                trainable: Vec::new(),
                slice_lens: spec
                    .program
                    .iter()
                    .map(|op| op.len.as_ref().and_then(|l| dims.resolve(l)).unwrap_or(0))
                    .collect(),
                personal: None,
            };
            for (i, p) in spec.params.iter().enumerate().filter(|(_, p)| !p.shared) {
                let full = format!("{}.{}", m.name, p.peft_name);
                let value = init_param(p, &full, &dims, seed, Some(w0), device)?;
                match (p.trainable, p.role) {
                    (true, Some(role)) => {
                        la.trainable.push((param_reg(i), full.clone()));
                        initial.push(InitialParam {
                            name: full,
                            role,
                            value,
                        });
                    }
                    _ => la.frozen.push((param_reg(i), value)),
                }
            }
            if spec.personal {
                la.personal = Some(personal_factors(
                    spec,
                    &plan,
                    m,
                    &dims,
                    seed,
                    device,
                    &mut initial,
                )?);
            }
            layers.insert((m.layer, m.module), la);
        }
        let set = AdapterSet {
            spec: spec.clone(),
            plan,
            scale: spec.scale_rule().value(adapter.alpha, rank),
            rank,
            dropout: adapter.dropout,
            layers,
            shared,
            shared_regs,
            deltas,
            device: device.clone(),
        };
        Ok((set, initial))
    }

    /// The scale the `scale` op multiplies by.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The spec this set runs.
    pub fn spec(&self) -> &AdapterSpec {
        &self.spec
    }

    /// How every adapted layer runs the program (compiled once, when the set was built).
    pub fn plan_kind(&self) -> PlanKind {
        self.plan.kind()
    }

    /// [`AdapterSet::plan_kind`]'s name: `"fused low-rank"` or `"op list"`.
    pub fn plan_name(&self) -> &'static str {
        self.plan.kind().name()
    }

    /// Whether `(layer, module)` carries an adapter.
    pub fn adapts(&self, layer: usize, module: Module) -> bool {
        self.layers.contains_key(&(layer, module))
    }

    /// The adapted `(layer, module)` pairs.
    pub fn targets(&self) -> impl Iterator<Item = (usize, Module)> + '_ {
        self.layers.keys().copied()
    }

    /// The adapted modules whose update is the plain product `s·B·A` of two trainable
    /// factors; empty when the program is anything else (VeRA, DoRA, an op list).
    pub fn low_rank_modules(&self) -> Vec<LowRankModule> {
        let Body::LowRank { a, b, scaled, .. } = self.plan.body else {
            return Vec::new();
        };
        let scale = if scaled { self.scale } else { 1.0 };
        let mut out = Vec::with_capacity(self.layers.len());
        for la in self.layers.values() {
            let name = |reg: Reg| {
                la.trainable
                    .iter()
                    .find(|(r, _)| *r == reg)
                    .map(|(_, n)| n.clone())
            };
            let (Some(a), Some(b)) = (name(a), name(b)) else {
                return Vec::new();
            };
            out.push(LowRankModule {
                name: la.module.clone(),
                a,
                b,
                rank: self.rank,
                scale,
            });
        }
        out
    }

    /// The corrections to the frozen weights this set adds (shared with every client of the
    /// same base model).
    pub fn deltas(&self) -> &BaseDeltas {
        &self.deltas
    }

    /// Stores the corrections among `params` (names ending in `base_delta.weight`), checking
    /// that each names an adapted module and has its weight's shape; returns the rest.
    pub fn take_deltas(&self, params: &ParamSet) -> Result<ParamSet> {
        let mut rest = ParamSet::new();
        for (name, data) in params.iter() {
            let Some(module) = name.strip_suffix(&format!(".{BASE_DELTA_SUFFIX}")) else {
                rest.insert_tensor(name.clone(), data.clone());
                continue;
            };
            let la = self
                .layers
                .values()
                .find(|la| la.module == module)
                .ok_or_else(|| Error::param(name.clone(), "no adapted module of that name"))?;
            if data.shape() != la.shape {
                return Err(Error::param(
                    name.clone(),
                    format!(
                        "shape {:?} where the weight's {:?} was expected",
                        data.shape(),
                        la.shape
                    ),
                ));
            }
            self.deltas.set(name, module, data, &self.device)?;
        }
        Ok(rest)
    }

    /// The frozen tensors shared by all layers (VeRA's projections), by parameter name.
    pub fn shared_tensors(&self) -> &[(String, Tensor)] {
        &self.shared
    }

    /// The adapted output of `(layer, module)`: `base` when the layer carries no adapter.
    /// `param` gives the current value of a trainable tensor by its full name.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        layer: usize,
        module: Module,
        x: &Tensor,
        base: Tensor,
        w0: &Tensor,
        param: &dyn Fn(&str) -> Result<Tensor>,
        ctx: &mut ForwardCtx<'_>,
    ) -> Result<Tensor> {
        let Some(la) = self.layers.get(&(layer, module)) else {
            return Ok(base);
        };
        let mut regs: Vec<Option<Tensor>> = vec![None; self.plan.registers];
        regs[X] = Some(x.clone());
        // The frozen layer is `W0 + Δ` when the server has corrected it: its output gains
        // `x·Δᵀ`, and the fused node's input gradient (`dy·W0`) must see `W0 + Δ` too. The
        // fused node detaches `base`, so the correction's product is detached there; an op
        // list keeps it in the graph.
        if let Some(delta) = self.deltas.get(&la.module) {
            let fused = matches!(self.plan.body, Body::LowRank { .. });
            let xin = if fused { x.detach() } else { x.clone() };
            let corrected = crate::layers::linear(&xin, &delta, None)
                .and_then(|c| base.add(&c))
                .ctx("adding the weight correction")?;
            regs[BASE] = Some(corrected);
            regs[W0] = Some(w0.add(&delta).ctx("correcting the frozen weight")?);
        } else {
            regs[BASE] = Some(base);
            regs[W0] = Some(w0.clone());
        }
        for (&reg, (_, t)) in self.shared_regs.iter().zip(&self.shared) {
            regs[reg] = Some(t.clone());
        }
        for (reg, t) in &la.frozen {
            regs[*reg] = Some(t.clone());
        }
        for (reg, full) in &la.trainable {
            regs[*reg] = Some(param(full)?);
        }
        if let (Some([la_a, la_b]), Body::LowRank { a, b, .. }) = (&la.personal, &self.plan.body) {
            // Σ of two low-rank updates is one of rank 2r: A stacked by rows, B by columns.
            let (ga, gb) = (regs[*a].take(), regs[*b].take());
            let (ga, gb) = (
                ga.ok_or_else(|| Error::param(la_a.clone(), "global factor missing"))?,
                gb.ok_or_else(|| Error::param(la_b.clone(), "global factor missing"))?,
            );
            regs[*a] = Some(Tensor::cat(&[&ga, &param(la_a)?], 0).ctx("stacking A")?);
            regs[*b] = Some(Tensor::cat(&[&gb, &param(la_b)?], 1).ctx("stacking B")?);
        }
        let mut env = OpEnv {
            scale: self.scale,
            dropout: self.dropout,
            ctx,
        };
        run(&self.plan, &mut regs, &la.slice_lens, &mut env)
    }
}

/// The short names a target may use, in block order: the last path component where it is
/// unique in the block (`q_proj`, `query`), the full path otherwise (`attention.output.dense`).
fn module_hint(modules: &[ModuleInfo]) -> String {
    let mut kinds: Vec<Module> = modules.iter().map(|m| m.module).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let last = |m: &Module| m.path().rsplit('.').next().unwrap_or_default();
    kinds
        .iter()
        .map(|m| {
            let short = last(m);
            if kinds.iter().filter(|k| last(k) == short).count() == 1 {
                short
            } else {
                m.path()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The personal adapter's two factors on module `m` (FedDPA): the global factors' shapes and
/// init rules under names of their own (`lora_A.local.weight`), so their seeded values differ
/// from the global ones. Returns their full names, A first.
fn personal_factors(
    spec: &AdapterSpec,
    plan: &Plan,
    m: &ModuleInfo,
    dims: &Dims,
    seed: u64,
    device: &Device,
    initial: &mut Vec<InitialParam>,
) -> Result<[String; 2]> {
    let Body::LowRank { a, b, .. } = plan.body else {
        return Err(Error::param(
            m.name.clone(),
            "a personal adapter needs a low-rank plan",
        ));
    };
    let mut names = Vec::with_capacity(2);
    for (reg, role) in [(a, Role::LocalA), (b, Role::LocalB)] {
        let p = &spec.params[reg - crate::adapter::ops::INPUTS.len()];
        let local = personal_name(&p.peft_name);
        let full = format!("{}.{local}", m.name);
        let value = init_param(p, &full, dims, seed, Some(&m.weight), device)?;
        initial.push(InitialParam {
            name: full.clone(),
            role,
            value,
        });
        names.push(full);
    }
    Ok([names.remove(0), names.remove(0)])
}

/// `lora_A.weight` → `lora_A.local.weight`: PEFT's `<factor>.<adapter>.weight` with the
/// adapter named `local`.
pub fn personal_name(peft_name: &str) -> String {
    match peft_name.strip_suffix(".weight") {
        Some(stem) => format!("{stem}.local.weight"),
        None => format!("{peft_name}.local"),
    }
}

/// The initial value of parameter `p` named `name` at `dims`.
fn init_param(
    p: &ParamSpec,
    name: &str,
    dims: &Dims,
    seed: u64,
    w0: Option<&Tensor>,
    device: &Device,
) -> Result<Tensor> {
    let shape = dims
        .shape(&p.shape)
        .ok_or_else(|| Error::param(name, "unknown dimension symbol"))?;
    let n: usize = shape.iter().product();
    let mut rng = stream(seed, name, p.seed);
    let values = match &p.init {
        InitRule::Zeros => vec![0.0; n],
        InitRule::Ones => vec![1.0; n],
        InitRule::Constant { value } => vec![*value as f32; n],
        InitRule::Normal { std } => normal(&mut rng, n, *std),
        InitRule::Uniform { low, high } => uniform(&mut rng, n, *low, *high),
        InitRule::KaimingUniform { a } => {
            let bound = kaiming_bound(*a, *shape.last().unwrap_or(&1));
            uniform(&mut rng, n, -bound, bound)
        }
        InitRule::BaseColNorm => {
            let w0 = w0.ok_or_else(|| Error::param(name, "base_col_norm needs a base weight"))?;
            return w0
                .sqr()
                .and_then(|s| s.sum(1))
                .and_then(|s| s.sqrt())
                .ctx(name);
        }
    };
    tensor(values, &shape, device)
}
