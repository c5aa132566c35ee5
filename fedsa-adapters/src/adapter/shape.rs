//! Shape inference for spec programs: run before any tensor exists, on small distinct sizes when
//! a spec is read and on the real sizes of every adapted layer when it is built, so a program
//! that does not fit fails with the op and the shapes instead of a backend error mid-training.

use std::collections::HashMap;

use fedsa_core::{Error, Result};

use crate::adapter::spec::{AdapterSpec, DimExpr, INPUTS};

/// The sizes a spec's symbols stand for at one layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub inp: usize,
    pub out: usize,
    pub rank: usize,
    pub in_max: usize,
    pub out_max: usize,
}

impl Dims {
    pub(crate) fn resolve(&self, d: &DimExpr) -> Option<usize> {
        match d {
            DimExpr::Fixed(n) => Some(*n),
            DimExpr::Symbol(s) => match s.as_str() {
                "r" => Some(self.rank),
                "in" => Some(self.inp),
                "out" => Some(self.out),
                "in_max" => Some(self.in_max),
                "out_max" => Some(self.out_max),
                _ => None,
            },
        }
    }

    pub(crate) fn shape(&self, dims: &[DimExpr]) -> Option<Vec<usize>> {
        dims.iter().map(|d| self.resolve(d)).collect()
    }
}

/// Numpy-style broadcast of two shapes (right-aligned).
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// The output shape of one op, or why it does not apply.
pub(crate) fn op_shape(
    op: &str,
    args: &[&[usize]],
    slice: Option<(usize, usize)>,
) -> std::result::Result<Vec<usize>, String> {
    let show = |s: &[usize]| format!("{s:?}");
    match op {
        "linear" => {
            let (x, w) = (args[0], args[1]);
            match (x.last(), w) {
                (Some(i), [o, wi]) if i == wi => {
                    let mut s = x.to_vec();
                    *s.last_mut().expect("non-empty") = *o;
                    Ok(s)
                }
                _ => Err(format!(
                    "linear needs x [..., in] and w [out, in], got {} and {}",
                    show(x),
                    show(w)
                )),
            }
        }
        "matmul" => match (args[0], args[1]) {
            ([m, k], [k2, n]) if k == k2 => Ok(vec![*m, *n]),
            (a, b) => Err(format!(
                "matmul needs [m, k] and [k, n], got {} and {}",
                show(a),
                show(b)
            )),
        },
        "add" | "sub" | "mul" | "div" => broadcast(args[0], args[1]).ok_or_else(|| {
            format!(
                "{op}: shapes {} and {} do not broadcast",
                show(args[0]),
                show(args[1])
            )
        }),
        "scale" | "dropout" | "detach" => Ok(args[0].to_vec()),
        "transpose" => match args[0] {
            [a, b] => Ok(vec![*b, *a]),
            s => Err(format!("transpose needs a matrix, got {}", show(s))),
        },
        "col_norm" => match args[0] {
            [o, _] => Ok(vec![*o]),
            s => Err(format!(
                "col_norm needs a weight [out, in], got {}",
                show(s)
            )),
        },
        "slice" => {
            let (dim, len) = slice.unwrap_or((usize::MAX, 0));
            let s = args[0];
            if dim >= s.len() || len == 0 || len > s[dim] {
                return Err(format!(
                    "slice of {} along dim {dim} to length {len} does not fit",
                    show(s)
                ));
            }
            let mut out = s.to_vec();
            out[dim] = len;
            Ok(out)
        }
        other => Err(format!("unknown op `{other}`")),
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
        let out = op_shape(&op.op, &args, slice).map_err(|msg| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast(&[2, 3, 4], &[4]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast(&[2, 1], &[1, 5]), Some(vec![2, 5]));
        assert_eq!(broadcast(&[3], &[4]), None);
    }

    #[test]
    fn linear_checks_inner_dimension() {
        assert_eq!(
            op_shape("linear", &[&[2, 3, 4], &[5, 4]], None),
            Ok(vec![2, 3, 5])
        );
        assert!(op_shape("linear", &[&[2, 3, 4], &[4, 5]], None).is_err());
        assert_eq!(op_shape("slice", &[&[3, 11]], Some((1, 7))), Ok(vec![3, 7]));
        assert!(op_shape("slice", &[&[3, 11]], Some((1, 12))).is_err());
    }
}
