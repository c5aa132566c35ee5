//! Spec programs compiled once, when an [`AdapterSet`](crate::adapter::AdapterSet) is built:
//! names resolved to register indices, op names to [`OpKind`], and a LoRA-shaped program
//! recognised as the fused low-rank node ([`crate::adapter::low_rank`]). A forward then runs the
//! plan over a `Vec` of registers, with no string compared or hashed.

use std::collections::HashMap;
use std::fmt;

use fedsa_core::{Error, Result};

use crate::adapter::ops::{INPUTS, OpKind};
use crate::adapter::spec::AdapterSpec;

/// A register: an index into the registers of one forward.
pub(crate) type Reg = usize;

/// The layer input `x`; `base` and `W0` follow, then the spec's parameters in declaration
/// order, then the values the program computes (one register per distinct output name).
pub(crate) const X: Reg = 0;
pub(crate) const BASE: Reg = 1;
pub(crate) const W0: Reg = 2;

/// The register of the spec's `i`-th parameter.
pub(crate) fn param_reg(i: usize) -> Reg {
    INPUTS.len() + i
}

/// How the host runs an adapter's program, for a front end to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// The whole program is one low-rank update `base + s · B A dropout(x)` with hand-written
    /// gradients.
    FusedLowRank,
    /// The program's ops run one by one through candle's differentiable ops.
    OpList {
        /// How many ops.
        ops: usize,
    },
}

impl PlanKind {
    /// `"fused low-rank"` or `"op list"`.
    pub fn name(self) -> &'static str {
        match self {
            PlanKind::FusedLowRank => "fused low-rank",
            PlanKind::OpList { .. } => "op list",
        }
    }
}

impl fmt::Display for PlanKind {
    /// `fused low-rank`, or `op list (N ops)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanKind::FusedLowRank => f.write_str(self.name()),
            PlanKind::OpList { ops: 1 } => write!(f, "{} (1 op)", self.name()),
            PlanKind::OpList { ops } => write!(f, "{} ({ops} ops)", self.name()),
        }
    }
}

/// One op of an op list: `out = kind(args[..kind.arity()])`; `dim` is a `slice`'s dimension.
pub(crate) struct Step {
    pub kind: OpKind,
    pub args: [Reg; 2],
    pub out: Reg,
    pub dim: usize,
}

/// What a forward runs.
pub(crate) enum Body {
    /// `base + s · ((dropout(x) · aᵀ) · bᵀ)` as one node: `a` and `b` are registers that hold
    /// an input or a parameter; `dropout` whether the program drops out its input; `scaled`
    /// whether it multiplies by the spec's scale (once).
    LowRank {
        a: Reg,
        b: Reg,
        dropout: bool,
        scaled: bool,
    },
    /// The spec's ops in order.
    Ops(Vec<Step>),
}

/// A compiled program.
pub(crate) struct Plan {
    pub body: Body,
    /// Registers a forward allocates.
    pub registers: usize,
    /// The register holding the result.
    pub output: Reg,
    /// Each register's name, for error messages.
    names: Vec<String>,
}

impl Plan {
    pub(crate) fn kind(&self) -> PlanKind {
        match &self.body {
            Body::LowRank { .. } => PlanKind::FusedLowRank,
            Body::Ops(steps) => PlanKind::OpList { ops: steps.len() },
        }
    }

    /// The name register `r` has in the spec.
    pub(crate) fn name(&self, r: Reg) -> &str {
        &self.names[r]
    }
}

/// Compiles a validated spec: every argument names an input, a parameter or an earlier
/// output (the validator checked it; a spec edited after validation gets an error here).
pub(crate) fn compile(spec: &AdapterSpec) -> Result<Plan> {
    let bad =
        |field: String, msg: String| Error::config(format!("adapter `{}`", spec.name), field, msg);
    let entries = INPUTS
        .into_iter()
        .chain(spec.params.iter().map(|p| p.name.as_str()));
    let mut names: Vec<String> = entries.clone().map(ToString::to_string).collect();
    let mut index: HashMap<&str, Reg> = entries.enumerate().map(|(r, n)| (n, r)).collect();
    let mut steps = Vec::with_capacity(spec.program.len());
    for (i, op) in spec.program.iter().enumerate() {
        let kind = OpKind::parse(&op.op).ok_or_else(|| {
            bad(
                format!("program[{i}].op"),
                format!("unknown op `{}`", op.op),
            )
        })?;
        if op.args.len() != kind.arity() {
            return Err(bad(
                format!("program[{i}].args"),
                format!("`{}` takes {} argument(s)", op.op, kind.arity()),
            ));
        }
        let mut args = [X; 2];
        for (slot, a) in args.iter_mut().zip(&op.args) {
            *slot = *index.get(a.as_str()).ok_or_else(|| {
                bad(
                    format!("program[{i}].args"),
                    format!("`{a}` is not set here"),
                )
            })?;
        }
        let out = if let Some(&r) = index.get(op.out.as_str()) {
            r
        } else {
            names.push(op.out.clone());
            names.len() - 1
        };
        index.insert(op.out.as_str(), out);
        steps.push(Step {
            kind,
            args,
            out,
            dim: op.dim.unwrap_or(0),
        });
    }
    let output = *index.get(spec.output.as_str()).ok_or_else(|| {
        bad(
            "output".into(),
            format!("`{}` is never computed by the program", spec.output),
        )
    })?;
    let body = low_rank(&steps, output).unwrap_or(Body::Ops(steps));
    Ok(Plan {
        body,
        registers: names.len(),
        output,
        names,
    })
}

/// Where an op's argument comes from: a register set before the program runs (an input or a
/// parameter, which no op may overwrite), or the op of that index.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Entry(Reg),
    Op(usize),
}

/// The fused low-rank body of a program that computes exactly a LoRA update, or `None`.
///
/// Recognised: programs whose ops form exactly one chain from the input `x` to the result, in
/// any register names. The last op is `add(base, u)` or `add(u, base)` into the result
/// register, and `u` comes from `x` through these ops and no others, in list order:
/// - `linear(·, A)` and, later, `linear(·, B)`, where `A` and `B` are inputs or parameters (not
///   computed values such as a slice);
/// - at most one `dropout`, before the first `linear`;
/// - at most one `scale`, at any point of the chain (before or after the dropout, between or
///   after the products).
///
/// These are all `base + s · ((x ⊙ m) · Aᵀ) · Bᵀ` (`s` the scale or 1, `m` the dropout mask or
/// 1), since a scalar factor commutes with the mask and with both products and the sum is
/// commutative, and each draws its one mask (when it has a dropout) with `x`'s shape: what the
/// fused node computes, with the same draw. Not recognised, so run op by op: any other op in
/// the program (even one whose result is unused, since a dropout there would draw), a second
/// `scale` or `dropout`, a dropout after a product (another mask shape), `matmul`-merged
/// factors (`linear(x, scale(matmul(B, A)))`), `sub`/`mul`/`detach` anywhere, or a result
/// register other than the `add`'s.
fn low_rank(steps: &[Step], output: Reg) -> Option<Body> {
    // The source of each op's arguments, from the registers' definitions so far.
    let mut defined: HashMap<Reg, Source> = HashMap::new();
    let mut sources = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let source = |r: Reg| defined.get(&r).copied().unwrap_or(Source::Entry(r));
        sources.push([source(step.args[0]), source(step.args[1])]);
        defined.insert(step.out, Source::Op(i));
    }
    let last = steps.len().checked_sub(1)?;
    let add = &steps[last];
    if add.kind != OpKind::Add || add.out != output {
        return None;
    }
    let ([Source::Entry(BASE), mut at] | [mut at, Source::Entry(BASE)]) = sources[last] else {
        return None;
    };
    // Walk the chain back from `u` to `x`, collecting its ops input-side first.
    let mut chain = Vec::new();
    while let Source::Op(i) = at {
        chain.push(i);
        at = sources[i][0];
    }
    chain.reverse();
    if at != Source::Entry(X) || chain.len() + 1 != steps.len() {
        return None;
    }
    let (mut weights, mut dropout, mut scaled) = (Vec::new(), false, false);
    for &i in &chain {
        match steps[i].kind {
            OpKind::Dropout if !dropout && weights.is_empty() => dropout = true,
            OpKind::Scale if !scaled => scaled = true,
            OpKind::Linear => match sources[i][1] {
                Source::Entry(w) => weights.push(w),
                Source::Op(_) => return None,
            },
            _ => return None,
        }
    }
    let [a, b] = weights[..] else {
        return None;
    };
    Some(Body::LowRank {
        a,
        b,
        dropout,
        scaled,
    })
}

impl AdapterSpec {
    /// How the host runs this spec's program (compiled as [`crate::adapter::AdapterSet`] does
    /// when it is built, without a model): [`PlanKind::FusedLowRank`] for the LoRA shapes the
    /// recogniser takes, [`PlanKind::OpList`] otherwise. Errors as [`AdapterSpec::validate`].
    pub fn plan_kind(&self) -> Result<PlanKind> {
        self.validate(&format!("adapter `{}`", self.name))?;
        compile(self).map(|p| p.kind())
    }

    /// This spec with a personal adapter next to the global one on every layer (FedDPA):
    /// only for a plain low-rank program of two trainable factors, whose sum with a second
    /// pair is again one low-rank update (the factors stacked, rank `2r`).
    pub fn with_personal_adapter(mut self) -> Result<AdapterSpec> {
        self.validate(&format!("adapter `{}`", self.name))?;
        let plan = compile(&self)?;
        let trainable = |reg: Reg| {
            reg.checked_sub(INPUTS.len())
                .and_then(|i| self.params.get(i))
                .is_some_and(|p| p.trainable && !p.shared)
        };
        match plan.body {
            Body::LowRank { a, b, .. } if trainable(a) && trainable(b) => {
                self.personal = true;
                Ok(self)
            }
            _ => Err(Error::run_config(
                "strategy.name",
                format!(
                    "a personal adapter (feddpa) needs a plain low-rank adapter s·B·A with both \
                     factors trained (lora, rslora); adapter `{}` runs as {}",
                    self.name,
                    plan.kind()
                ),
            )),
        }
    }

    /// [`AdapterSpec::plan_kind`] as text for a listing: `fused low-rank`, `op list (8 ops)`,
    /// or `invalid: <why>`.
    pub fn plan_description(&self) -> String {
        match self.plan_kind() {
            Ok(kind) => kind.to_string(),
            Err(e) => format!("invalid: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fedsa_core::config::AdapterConfig;

    fn program(kind: &str) -> AdapterSpec {
        AdapterSpec::builtin(kind, &AdapterConfig::default()).unwrap()
    }

    #[test]
    fn lora_and_rslora_are_recognised_and_vera_is_not() {
        for kind in ["lora", "rslora"] {
            let spec = program(kind);
            let plan = compile(&spec).unwrap();
            let Body::LowRank { a, b, .. } = plan.body else {
                panic!("{kind} is not fused");
            };
            let (a, b, out) = (plan.name(a), plan.name(b), plan.name(plan.output));
            assert_eq!((a, b, out), ("lora_A", "lora_B", "y"));
            // Another result register is another function: not this one.
            let h = AdapterSpec {
                output: "h".into(),
                ..spec.clone()
            };
            assert!(matches!(compile(&h).unwrap().body, Body::Ops(_)));
        }
        let vera = program("vera");
        assert!(matches!(compile(&vera).unwrap().body, Body::Ops(_)));
    }

    #[test]
    fn registers_are_shared_by_name_and_entries_come_first() {
        let plan = compile(&program("vera")).unwrap();
        let Body::Ops(steps) = &plan.body else {
            panic!("vera is fused");
        };
        // x, base, W0, four parameters, then a, b, h, y.
        assert_eq!(plan.registers, 11);
        assert_eq!(plan.name(param_reg(0)), "vera_A");
        assert_eq!(steps[0].args[0], param_reg(0));
        assert_eq!((steps[0].kind, steps[0].dim), (OpKind::Slice, 1));
        // Every `h` is one register, read by the op after the one that writes it.
        let h = steps[2].out;
        assert_eq!(plan.name(h), "h");
        assert!(
            steps[3..7]
                .iter()
                .all(|s| s.out == h || s.out == plan.output)
        );
        assert_eq!(steps[7].args, [BASE, h]);
    }
}
