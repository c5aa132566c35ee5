//! Shape arithmetic for spec programs: a dimension expression (`r`, `in`, `out`, a number),
//! the sizes it stands for at one layer, and the output shape of each op. The spec's check
//! (`spec::check_program`) runs it before any tensor exists, on small distinct sizes when a
//! spec is read and on the real sizes of every adapted layer when it is built, so a program
//! that does not fit fails with the op and the shapes instead of a backend error mid-training.

use serde::{Deserialize, Serialize};

use crate::adapter::ops::OpKind;

/// A dimension of a parameter: a symbol (`r`, `in`, `out`, `in_max`, `out_max`) or a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DimExpr {
    Fixed(usize),
    Symbol(String),
}

/// The symbols a [`DimExpr`] may name.
pub(crate) const SYMBOLS: [&str; 5] = ["r", "in", "out", "in_max", "out_max"];

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
    op: OpKind,
    args: &[&[usize]],
    slice: Option<(usize, usize)>,
) -> std::result::Result<Vec<usize>, String> {
    let show = |s: &[usize]| format!("{s:?}");
    match op {
        OpKind::Linear => {
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
        OpKind::Matmul => match (args[0], args[1]) {
            ([m, k], [k2, n]) if k == k2 => Ok(vec![*m, *n]),
            (a, b) => Err(format!(
                "matmul needs [m, k] and [k, n], got {} and {}",
                show(a),
                show(b)
            )),
        },
        OpKind::Add | OpKind::Sub | OpKind::Mul | OpKind::Div => broadcast(args[0], args[1])
            .ok_or_else(|| {
                format!(
                    "{}: shapes {} and {} do not broadcast",
                    op.name(),
                    show(args[0]),
                    show(args[1])
                )
            }),
        OpKind::Scale | OpKind::Dropout | OpKind::Detach => Ok(args[0].to_vec()),
        OpKind::Transpose => match args[0] {
            [a, b] => Ok(vec![*b, *a]),
            s => Err(format!("transpose needs a matrix, got {}", show(s))),
        },
        OpKind::ColNorm => match args[0] {
            [o, _] => Ok(vec![*o]),
            s => Err(format!(
                "col_norm needs a weight [out, in], got {}",
                show(s)
            )),
        },
        OpKind::Slice => {
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
            op_shape(OpKind::Linear, &[&[2, 3, 4], &[5, 4]], None),
            Ok(vec![2, 3, 5])
        );
        assert!(op_shape(OpKind::Linear, &[&[2, 3, 4], &[4, 5]], None).is_err());
        assert_eq!(
            op_shape(OpKind::Slice, &[&[3, 11]], Some((1, 7))),
            Ok(vec![3, 7])
        );
        assert!(op_shape(OpKind::Slice, &[&[3, 11]], Some((1, 12))).is_err());
    }
}
