//! The adapter spec format (JSON) and its validation. Errors name the spec (file or plugin) and
//! the field (`params[1].shape`, `program[3].op`) so an author can fix the text directly.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use fedsa_core::config::AdapterConfig;
use fedsa_core::{Error, Result, Role};

use crate::adapter::builtin;
use crate::adapter::ops::{INPUTS, OpKind};
use crate::adapter::shape::{DimExpr, Dims, SYMBOLS, op_shape};

/// How a parameter starts. Every random rule is seeded from the run seed and the tensor's
/// name (plus the parameter's `seed`), never from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InitRule {
    Zeros,
    Ones,
    Constant {
        value: f64,
    },
    Normal {
        std: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    /// PyTorch `kaiming_uniform_(w, a)`, fan-in = the last dimension (LoRA: `a = sqrt(5)`).
    KaimingUniform {
        a: f64,
    },
    /// The L2 norm of each output row of the frozen weight `W0` (DoRA's magnitude); shape `[out]`.
    BaseColNorm,
}

/// One adapter parameter, instantiated per adapted layer (or once, when `shared`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// The name the program uses (`lora_A`).
    pub name: String,
    /// The PEFT name after the module path (`lora_A.weight`, `vera_lambda_d`).
    pub peft_name: String,
    pub shape: Vec<DimExpr>,
    pub init: InitRule,
    #[serde(default = "yes")]
    pub trainable: bool,
    /// One tensor for all adapted layers (VeRA's projections), sliced by the program.
    #[serde(default)]
    pub shared: bool,
    /// What the parameter is for; required for trainable parameters.
    #[serde(default)]
    pub role: Option<Role>,
    /// Mixed into the run seed for this parameter's init.
    #[serde(default)]
    pub seed: u64,
}

fn yes() -> bool {
    true
}

/// One step of the program: `out = op(args...)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    pub op: String,
    pub args: Vec<String>,
    pub out: String,
    /// `slice` only: the dimension to cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// `slice` only: how many leading entries to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<DimExpr>,
}

/// A declarative adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterSpec {
    pub name: String,
    /// `alpha/r`, `alpha/sqrt(r)`, `alpha`, or a number; the `scale` op multiplies by it.
    #[serde(default = "default_scale")]
    pub scale: String,
    pub params: Vec<ParamSpec>,
    pub program: Vec<OpSpec>,
    /// The register holding the layer's output, `[..., out]`.
    #[serde(default = "default_output")]
    pub output: String,
    /// FedDPA: every adapted layer also carries a personal copy of the two factors (roles
    /// `local_a`, `local_b`), added to the global one. Set by the strategy, never by a spec
    /// file ([`AdapterSpec::with_personal_adapter`]).
    #[serde(skip)]
    pub personal: bool,
}

fn default_scale() -> String {
    "1".into()
}
fn default_output() -> String {
    "y".into()
}

/// The parsed scale rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScaleRule {
    AlphaOverRank,
    AlphaOverSqrtRank,
    Alpha,
    Constant(f64),
}

impl ScaleRule {
    pub fn parse(text: &str) -> Option<ScaleRule> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        match t.as_str() {
            "alpha/r" => Some(ScaleRule::AlphaOverRank),
            "alpha/sqrt(r)" => Some(ScaleRule::AlphaOverSqrtRank),
            "alpha" => Some(ScaleRule::Alpha),
            other => other
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(ScaleRule::Constant),
        }
    }

    /// The scale for a given `alpha` and rank.
    pub fn value(self, alpha: f64, rank: usize) -> f64 {
        match self {
            ScaleRule::AlphaOverRank => alpha / rank as f64,
            ScaleRule::AlphaOverSqrtRank => alpha / (rank as f64).sqrt(),
            ScaleRule::Alpha => alpha,
            ScaleRule::Constant(v) => v,
        }
    }
}

impl AdapterSpec {
    /// A built-in adapter (`lora`, `rslora`, `vera`), checked against the adapter config.
    pub fn builtin(kind: &str, adapter: &AdapterConfig) -> Result<AdapterSpec> {
        check_adapter_config(adapter)?;
        let text = builtin::text(kind).ok_or_else(|| {
            Error::run_config(
                "adapter.kind",
                format!(
                    "unknown adapter `{kind}` (built-in: {}; or set adapter.spec to a spec file)",
                    builtin::builtin_kinds().join(", ")
                ),
            )
        })?;
        AdapterSpec::from_text(text, &format!("built-in adapter `{kind}`"))
    }

    /// Parses and validates spec text; `source_name` (a file, a plugin) goes into errors.
    pub fn from_text(text: &str, source_name: &str) -> Result<AdapterSpec> {
        let spec: AdapterSpec = serde_json::from_str(text).map_err(|e| {
            Error::config(
                source_name,
                "<json>",
                format!("not a valid adapter spec: {e}"),
            )
        })?;
        spec.validate(source_name)?;
        Ok(spec)
    }

    /// Reads a spec file.
    pub fn load(path: &std::path::Path) -> Result<AdapterSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_text(&text, &path.display().to_string())
    }

    /// The spec as pretty JSON (the text format plugins return).
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The parsed scale rule (validated).
    pub fn scale_rule(&self) -> ScaleRule {
        ScaleRule::parse(&self.scale).unwrap_or(ScaleRule::Constant(1.0))
    }

    /// Checks names, roles, shapes and the program; shapes are tried on small distinct sizes.
    pub fn validate(&self, source: &str) -> Result<()> {
        let bad = |field: String, msg: String| Err(Error::config(source, field, msg));
        if self.name.trim().is_empty() {
            return bad("name".into(), "must not be empty".into());
        }
        if ScaleRule::parse(&self.scale).is_none() {
            return bad(
                "scale".into(),
                format!(
                    "`{}` is not a scale rule (alpha/r, alpha/sqrt(r), alpha, or a number)",
                    self.scale
                ),
            );
        }
        if self.params.is_empty() {
            return bad("params".into(), "an adapter needs parameters".into());
        }
        let mut names = BTreeSet::new();
        let mut peft = BTreeSet::new();
        for (i, p) in self.params.iter().enumerate() {
            let field = |f: &str| format!("params[{i}].{f}");
            if p.name.is_empty() || INPUTS.contains(&p.name.as_str()) {
                return bad(
                    field("name"),
                    format!("`{}` is empty or reserved ({})", p.name, INPUTS.join(", ")),
                );
            }
            if !names.insert(p.name.as_str()) {
                return bad(field("name"), format!("`{}` is declared twice", p.name));
            }
            if p.peft_name.is_empty() || p.peft_name.starts_with('.') {
                return bad(
                    field("peft_name"),
                    "must be a non-empty name such as `lora_A.weight`".into(),
                );
            }
            if !peft.insert(p.peft_name.as_str()) {
                return bad(
                    field("peft_name"),
                    format!("`{}` is used twice", p.peft_name),
                );
            }
            if p.shape.is_empty() {
                return bad(field("shape"), "must have at least one dimension".into());
            }
            for d in &p.shape {
                match d {
                    DimExpr::Fixed(0) => {
                        return bad(field("shape"), "dimensions must be positive".into());
                    }
                    DimExpr::Symbol(s) if !SYMBOLS.contains(&s.as_str()) => {
                        return bad(
                            field("shape"),
                            format!("unknown dimension `{s}` (known: {})", SYMBOLS.join(", ")),
                        );
                    }
                    DimExpr::Symbol(s) if p.shared && (s == "in" || s == "out") => {
                        return bad(
                            field("shape"),
                            format!(
                                "a shared parameter differs by layer in `{s}`: use `{s}_max` and slice it"
                            ),
                        );
                    }
                    DimExpr::Fixed(_) | DimExpr::Symbol(_) => {}
                }
            }
            if p.trainable && p.role.is_none() {
                return bad(
                    field("role"),
                    "a trainable parameter needs a role (a or b)".into(),
                );
            }
            if p.role == Some(Role::Head) {
                return bad(
                    field("role"),
                    "`head` belongs to the classifier, not to an adapter".into(),
                );
            }
            if p.trainable && p.shared {
                return bad(
                    field("shared"),
                    "shared parameters must be frozen (they are regenerated from the seed, not exchanged)".into(),
                );
            }
            if p.init == InitRule::BaseColNorm
                && (p.shared || p.shape != [DimExpr::Symbol("out".into())])
            {
                return bad(
                    field("init"),
                    "base_col_norm needs shape [\"out\"] on a per-layer parameter".into(),
                );
            }
            if let InitRule::Uniform { low, high } = p.init
                && low.partial_cmp(&high) != Some(std::cmp::Ordering::Less)
            {
                return bad(field("init"), "uniform needs low < high".into());
            }
        }
        if self.program.is_empty() {
            return bad("program".into(), "must have at least one op".into());
        }
        for (i, op) in self.program.iter().enumerate() {
            let Some(kind) = OpKind::parse(&op.op) else {
                return bad(
                    format!("program[{i}].op"),
                    format!(
                        "unknown op `{}` (known: {})",
                        op.op,
                        OpKind::ALL.map(OpKind::name).join(", ")
                    ),
                );
            };
            let arity = kind.arity();
            if op.args.len() != arity {
                return bad(
                    format!("program[{i}].args"),
                    format!(
                        "`{}` takes {arity} argument(s), got {}",
                        op.op,
                        op.args.len()
                    ),
                );
            }
            if op.out.is_empty()
                || INPUTS.contains(&op.out.as_str())
                || names.contains(op.out.as_str())
            {
                return bad(
                    format!("program[{i}].out"),
                    format!(
                        "`{}` is empty or would overwrite an input or a parameter",
                        op.out
                    ),
                );
            }
            if (op.op == "slice") != (op.dim.is_some() && op.len.is_some()) {
                return bad(
                    format!("program[{i}]"),
                    "`dim` and `len` are required by `slice` and allowed nowhere else".into(),
                );
            }
        }
        for p in &self.params {
            if !self.program.iter().any(|op| op.args.contains(&p.name)) {
                return bad(
                    "params".into(),
                    format!("parameter `{}` is never used by the program", p.name),
                );
            }
        }
        // Distinct sizes so that a transposed or mismatched shape cannot pass by accident.
        check_program(
            self,
            &Dims {
                inp: 7,
                out: 5,
                rank: 3,
                in_max: 11,
                out_max: 13,
            },
            source,
        )
    }
}

/// Infers every register's shape at `dims`; errors name the op and the operands.
pub(crate) fn check_program(spec: &AdapterSpec, dims: &Dims, source: &str) -> Result<()> {
    let batch = [2usize, 3];
    let mut shapes: HashMap<&str, Vec<usize>> = HashMap::new();
    shapes.insert(INPUTS[0], vec![batch[0], batch[1], dims.inp]);
    shapes.insert(INPUTS[1], vec![batch[0], batch[1], dims.out]);
    shapes.insert(INPUTS[2], vec![dims.out, dims.inp]);
    for (i, p) in spec.params.iter().enumerate() {
        let shape = dims.shape(&p.shape).ok_or_else(|| {
            Error::config(
                source,
                format!("params[{i}].shape"),
                "unknown dimension symbol",
            )
        })?;
        if shape.contains(&0) {
            return Err(Error::config(
                source,
                format!("params[{i}].shape"),
                format!("`{}` would have an empty dimension: {shape:?}", p.name),
            ));
        }
        shapes.insert(p.name.as_str(), shape);
    }
    for (i, op) in spec.program.iter().enumerate() {
        let mut args = Vec::with_capacity(op.args.len());
        for a in &op.args {
            let Some(s) = shapes.get(a.as_str()) else {
                return Err(Error::config(
                    source,
                    format!("program[{i}].args"),
                    format!(
                        "unknown parameter or value `{a}` (inputs: {}; parameters and earlier outputs)",
                        INPUTS.join(", ")
                    ),
                ));
            };
            args.push(s.as_slice());
        }
        let slice = match (op.dim, &op.len) {
            (Some(d), Some(l)) => Some((d, dims.resolve(l).unwrap_or(0))),
            _ => None,
        };
        let kind = OpKind::parse(&op.op).ok_or_else(|| {
            Error::config(
                source,
                format!("program[{i}].op"),
                format!("unknown op `{}`", op.op),
            )
        })?;
        let out = op_shape(kind, &args, slice).map_err(|msg| {
            Error::config(
                source,
                format!("program[{i}]"),
                format!(
                    "`{}`({}) at in={}, out={}, r={}: {msg}",
                    op.op,
                    op.args.join(", "),
                    dims.inp,
                    dims.out,
                    dims.rank
                ),
            )
        })?;
        shapes.insert(op.out.as_str(), out);
    }
    let expected = vec![batch[0], batch[1], dims.out];
    match shapes.get(spec.output.as_str()) {
        None => Err(Error::config(
            source,
            "output",
            format!("`{}` is never computed by the program", spec.output),
        )),
        Some(s) if *s != expected => Err(Error::config(
            source,
            "output",
            format!(
                "`{}` has shape {s:?}, the layer's output is {expected:?} ([..., out])",
                spec.output
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// The adapter config checks a spec relies on (rank 0 would build empty matrices).
pub(crate) fn check_adapter_config(adapter: &AdapterConfig) -> Result<()> {
    if adapter.rank == 0 {
        return Err(Error::run_config("adapter.rank", "must be at least 1"));
    }
    if !(0.0..1.0).contains(&adapter.dropout) {
        return Err(Error::run_config(
            "adapter.dropout",
            format!("must be in [0, 1), got {}", adapter.dropout),
        ));
    }
    if !adapter.alpha.is_finite() {
        return Err(Error::run_config("adapter.alpha", "must be finite"));
    }
    if adapter.target_modules.is_empty() {
        return Err(Error::run_config(
            "adapter.target_modules",
            "name at least one module",
        ));
    }
    Ok(())
}
