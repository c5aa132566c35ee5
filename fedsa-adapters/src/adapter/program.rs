//! Running a compiled plan ([`crate::adapter::plan`]) on one adapted layer: each op of an op
//! list maps to differentiable candle ops, and the fused low-rank body to its one node. Shapes
//! were checked when the adapter was built, so a backend error here is a real backend failure.

use candle_core::{D, Tensor};

use fedsa_core::{Error, Result};

use crate::adapter::ctx::ForwardCtx;
use crate::adapter::low_rank::low_rank_update;
use crate::adapter::ops::OpKind;
use crate::adapter::plan::{BASE, Body, Plan, Reg, W0, X};
use crate::backend::Context;
use crate::layers::linear;
use crate::training::seeded::dropout_mask;

/// What an op needs besides its arguments.
pub(crate) struct OpEnv<'c, 'r> {
    pub scale: f64,
    pub dropout: f64,
    pub ctx: &'c mut ForwardCtx<'r>,
}

impl OpEnv<'_, '_> {
    /// The dropout mask for `x` when this forward drops out (train mode, a rate, an RNG):
    /// drawn from the client's stream, so every plan draws the same masks in the same order.
    fn dropout_mask(&mut self, x: &Tensor) -> Result<Option<Tensor>> {
        match (&mut self.ctx.rng, self.ctx.train && self.dropout > 0.0) {
            (Some(rng), true) => dropout_mask(rng, x.dims(), self.dropout, x.device()).map(Some),
            _ => Ok(None),
        }
    }
}

/// Runs `plan` over `regs` (the inputs and parameters set, everything else `None`) and returns
/// the result register; `slice_lens[i]` is op `i`'s resolved slice length at this layer.
pub(crate) fn run(
    plan: &Plan,
    regs: &mut [Option<Tensor>],
    slice_lens: &[usize],
    env: &mut OpEnv<'_, '_>,
) -> Result<Tensor> {
    let steps = match &plan.body {
        Body::LowRank {
            a,
            b,
            dropout,
            scaled,
        } => return run_low_rank(plan, regs, [*a, *b], *dropout, *scaled, env),
        Body::Ops(steps) => steps,
    };
    for (i, step) in steps.iter().enumerate() {
        let arg = |k: usize| get(plan, regs, step.args[k]);
        let what = || format!("adapter op {i} (`{}`)", step.kind.name());
        let out = match step.kind {
            OpKind::Linear => linear(arg(0)?, arg(1)?, None).ctx(&what())?,
            OpKind::Matmul => arg(0)?.matmul(arg(1)?).ctx(&what())?,
            OpKind::Add => arg(0)?.broadcast_add(arg(1)?).ctx(&what())?,
            OpKind::Sub => arg(0)?.broadcast_sub(arg(1)?).ctx(&what())?,
            OpKind::Mul => arg(0)?.broadcast_mul(arg(1)?).ctx(&what())?,
            OpKind::Div => arg(0)?.broadcast_div(arg(1)?).ctx(&what())?,
            OpKind::Scale => arg(0)?.affine(env.scale, 0.0).ctx(&what())?,
            OpKind::Dropout => {
                let x = arg(0)?.clone();
                match env.dropout_mask(&x)? {
                    Some(mask) => x.mul(&mask).ctx(&what())?,
                    None => x,
                }
            }
            OpKind::Detach => arg(0)?.detach(),
            OpKind::Transpose => arg(0)?.t().ctx(&what())?,
            OpKind::ColNorm => arg(0)?
                .sqr()
                .and_then(|s| s.sum(D::Minus1))
                .and_then(|s| s.sqrt())
                .ctx(&what())?,
            OpKind::Slice => arg(0)?.narrow(step.dim, 0, slice_lens[i]).ctx(&what())?,
        };
        regs[step.out] = Some(out);
    }
    regs[plan.output]
        .take()
        .ok_or_else(|| unset(plan, plan.output))
}

/// The fused body: the same dropout draw as the op list would make, one graph node for the
/// update.
fn run_low_rank(
    plan: &Plan,
    regs: &[Option<Tensor>],
    [a, b]: [Reg; 2],
    dropout: bool,
    scaled: bool,
    env: &mut OpEnv<'_, '_>,
) -> Result<Tensor> {
    let x = get(plan, regs, X)?;
    let (base, w0) = (get(plan, regs, BASE)?, get(plan, regs, W0)?);
    let (a, b) = (get(plan, regs, a)?, get(plan, regs, b)?);
    let mask = if dropout { env.dropout_mask(x)? } else { None };
    // Multiplying by 1 is exact: a program without `scale` computes the same values.
    let scale = if scaled { env.scale } else { 1.0 };
    low_rank_update(x, base, w0, [a, b], mask, scale).ctx("adapter program (low-rank update)")
}

/// Register `r`'s value, or an error naming it.
fn get<'t>(plan: &Plan, regs: &'t [Option<Tensor>], r: Reg) -> Result<&'t Tensor> {
    regs[r].as_ref().ok_or_else(|| unset(plan, r))
}

fn unset(plan: &Plan, r: Reg) -> Error {
    Error::backend("adapter program", format!("`{}` is unset", plan.name(r)))
}
