//! An adapter spec instantiated on a model: which layers carry it, their frozen tensors, the
//! initial values of their trainable ones, the program compiled once for all of them, and the
//! forward pass of one adapted layer.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use fedsa_core::config::AdapterConfig;
use fedsa_core::{Error, Result, Role};

use crate::adapter::ctx::ForwardCtx;
use crate::adapter::plan::{BASE, Plan, PlanKind, Reg, W0, X, compile, param_reg};
use crate::adapter::program::{OpEnv, run};
use crate::adapter::shape::Dims;
use crate::adapter::spec::{AdapterSpec, InitRule, ParamSpec, check_adapter_config, check_program};
use crate::adapter::target::{Module, ModuleInfo};
use crate::backend::Context;
use crate::encoder::BaseModel;
use crate::training::seeded::{kaiming_bound, normal, stream, tensor, uniform};

/// A trainable tensor's name (PEFT style), role and initial value.
pub struct InitialParam {
    pub name: String,
    pub role: Role,
    pub value: Tensor,
}

struct LayerAdapter {
    /// Frozen per-layer tensors by register.
    frozen: Vec<(Reg, Tensor)>,
    /// Trainable tensors: register → full (PEFT) name.
    trainable: Vec<(Reg, String)>,
    /// Resolved `len` of each `slice` op (0 for other ops).
    slice_lens: Vec<usize>,
}

/// The spec on every targeted linear layer.
pub struct AdapterSet {
    spec: AdapterSpec,
    plan: Plan,
    scale: f64,
    dropout: f64,
    layers: BTreeMap<(usize, Module), LayerAdapter>,
    shared: Vec<(String, Tensor)>,
    /// The register of each `shared` tensor.
    shared_regs: Vec<Reg>,
}

impl AdapterSet {
    /// Places `spec` on the encoder's modules that `adapter.target_modules` matches.
    pub fn build(
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        base: &BaseModel,
        seed: u64,
    ) -> Result<(AdapterSet, Vec<InitialParam>)> {
        Self::build_on(spec, adapter, &base.modules(), base.device(), seed)
    }

    /// Places `spec` on the `modules` (any model's) that `adapter.target_modules` matches (PEFT
    /// rule: the module's full name equals a target or ends with `.target`); initial values
    /// depend only on `seed` and each tensor's name.
    pub fn build_on(
        spec: &AdapterSpec,
        adapter: &AdapterConfig,
        modules: &[ModuleInfo],
        device: &Device,
        seed: u64,
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
                frozen: Vec::new(),
                trainable: Vec::new(),
                slice_lens: spec
                    .program
                    .iter()
                    .map(|op| op.len.as_ref().and_then(|l| dims.resolve(l)).unwrap_or(0))
                    .collect(),
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
            layers.insert((m.layer, m.module), la);
        }
        let set = AdapterSet {
            spec: spec.clone(),
            plan,
            scale: spec.scale_rule().value(adapter.alpha, rank),
            dropout: adapter.dropout,
            layers,
            shared,
            shared_regs,
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
        regs[BASE] = Some(base);
        regs[W0] = Some(w0.clone());
        for (&reg, (_, t)) in self.shared_regs.iter().zip(&self.shared) {
            regs[reg] = Some(t.clone());
        }
        for (reg, t) in &la.frozen {
            regs[*reg] = Some(t.clone());
        }
        for (reg, full) in &la.trainable {
            regs[*reg] = Some(param(full)?);
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
