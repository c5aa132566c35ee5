//! The interpreter of spec programs: each op maps to differentiable candle ops. Shapes were
//! checked when the adapter was built, so a backend error here is a real backend failure.

use std::collections::HashMap;

use candle_core::{D, Tensor};

use fedsa_core::{Error, Result};

use crate::adapter::ctx::ForwardCtx;
use crate::adapter::low_rank::{LowRankProgram, low_rank_program, low_rank_update};
use crate::adapter::spec::OpSpec;
use crate::backend::Context;
use crate::layers::linear;
use crate::training::seeded::dropout_mask;

/// What an op needs besides its arguments.
pub(crate) struct OpEnv<'c, 'r> {
    pub scale: f64,
    pub dropout: f64,
    pub ctx: &'c mut ForwardCtx<'r>,
}

/// Runs `ops` over the registers; `slice_lens[i]` is op `i`'s resolved slice length. A
/// LoRA-shaped program whose result is `output` runs as one fused node (`low_rank`).
pub(crate) fn run(
    ops: &[OpSpec],
    slice_lens: &[usize],
    output: &str,
    regs: &mut HashMap<String, Tensor>,
    env: &mut OpEnv<'_, '_>,
) -> Result<()> {
    if let Some(program) = low_rank_program(ops, output) {
        return run_low_rank(&program, regs, env);
    }
    for (i, op) in ops.iter().enumerate() {
        let arg = |k: usize| -> Result<&Tensor> {
            regs.get(&op.args[k]).ok_or_else(|| {
                Error::backend("adapter program", format!("`{}` is unset", op.args[k]))
            })
        };
        let what = || format!("adapter op {i} (`{}`)", op.op);
        let out = match op.op.as_str() {
            "linear" => linear(arg(0)?, arg(1)?, None).ctx(&what())?,
            "matmul" => arg(0)?.matmul(arg(1)?).ctx(&what())?,
            "add" => arg(0)?.broadcast_add(arg(1)?).ctx(&what())?,
            "sub" => arg(0)?.broadcast_sub(arg(1)?).ctx(&what())?,
            "mul" => arg(0)?.broadcast_mul(arg(1)?).ctx(&what())?,
            "div" => arg(0)?.broadcast_div(arg(1)?).ctx(&what())?,
            "scale" => arg(0)?.affine(env.scale, 0.0).ctx(&what())?,
            "dropout" => {
                let x = arg(0)?;
                match (&mut env.ctx.rng, env.ctx.train && env.dropout > 0.0) {
                    (Some(rng), true) => {
                        let mask = dropout_mask(rng, x.dims(), env.dropout, x.device())?;
                        x.mul(&mask).ctx(&what())?
                    }
                    _ => x.clone(),
                }
            }
            "detach" => arg(0)?.detach(),
            "transpose" => arg(0)?.t().ctx(&what())?,
            "col_norm" => arg(0)?
                .sqr()
                .and_then(|s| s.sum(D::Minus1))
                .and_then(|s| s.sqrt())
                .ctx(&what())?,
            "slice" => {
                let dim = op.dim.unwrap_or(0);
                arg(0)?.narrow(dim, 0, slice_lens[i]).ctx(&what())?
            }
            other => {
                return Err(Error::backend(
                    "adapter program",
                    format!("unknown op `{other}`"),
                ));
            }
        };
        regs.insert(op.out.clone(), out);
    }
    Ok(())
}

/// [`run`] for a LoRA-shaped program: the same dropout draws, one graph node for the update.
fn run_low_rank(
    program: &LowRankProgram<'_>,
    regs: &mut HashMap<String, Tensor>,
    env: &mut OpEnv<'_, '_>,
) -> Result<()> {
    let get = |r: &str| {
        regs.get(r)
            .ok_or_else(|| Error::backend("adapter program", format!("`{r}` is unset")))
    };
    let (x, a, b) = (get("x")?, get(program.a)?, get(program.b)?);
    let (base, w0) = (get("base")?, get("W0")?);
    let mask = match (&mut env.ctx.rng, env.ctx.train && env.dropout > 0.0) {
        (Some(rng), true) => Some(dropout_mask(rng, x.dims(), env.dropout, x.device())?),
        _ => None,
    };
    let y = low_rank_update(x, base, w0, [a, b], mask, env.scale)
        .ctx("adapter program (low-rank update)")?;
    regs.insert(program.out.to_string(), y);
    Ok(())
}
