//! FedSVD's re-factorisation: every `every` aggregations the server takes the SVD of each
//! module's `B̄·A = UΣVᵀ` and sets `A ← V_rᵀ`, `B ← U_rΣ_r`. The product, and so the model, is
//! unchanged; A's rows become orthonormal. `B̄·A` has rank at most `r`, so it is never formed:
//! with thin QRs `B̄ = Q_bR_b` and `Aᵀ = Q_aR_a`, `B̄·A = Q_b(R_bR_aᵀ)Q_aᵀ`, and the SVD of the
//! `r × r` middle gives the rest.

use fedsa_core::{ClientUpdate, Error, LowRankModule, ModuleRule, ParamSet, Result, TensorData};

use super::linalg::{Mat, product_svd, scale_columns};

/// The FedSVD server rule.
#[derive(Debug)]
pub struct SvdRefresh {
    every: u64,
}

impl SvdRefresh {
    pub fn new(every: usize) -> SvdRefresh {
        SvdRefresh {
            every: every.max(1) as u64,
        }
    }
}

impl ModuleRule for SvdRefresh {
    fn name(&self) -> &'static str {
        "fedsvd refresh"
    }

    fn apply(
        &mut self,
        aggregations: u64,
        modules: &[LowRankModule],
        global: &mut ParamSet,
        _updates: &[ClientUpdate],
    ) -> Result<Vec<String>> {
        if !aggregations.is_multiple_of(self.every) {
            return Ok(Vec::new());
        }
        let mut changed = Vec::with_capacity(2 * modules.len());
        for m in modules {
            let (a, b) = (global.require(&m.a)?, global.require(&m.b)?);
            let (r, inp, out) = m.dims(a, b)?;
            let (na, nb) = refactor(
                &Mat::from_f32(r, inp, a.data()),
                &Mat::from_f32(out, r, b.data()),
            )
            .map_err(|message| Error::param(m.name.clone(), message))?;
            global.insert_tensor(m.a.clone(), TensorData::new(vec![r, inp], na.to_f32())?);
            global.insert_tensor(m.b.clone(), TensorData::new(vec![out, r], nb.to_f32())?);
            changed.push(m.a.clone());
            changed.push(m.b.clone());
        }
        Ok(changed)
    }
}

/// `(A', B')` with `B'·A' = b·a`, `A'` with orthonormal rows and `B'`'s columns ordered by
/// singular value.
pub fn refactor(a: &Mat, b: &Mat) -> std::result::Result<(Mat, Mat), String> {
    let r = a.rows;
    if a.cols < r || b.rows < r {
        return Err(format!(
            "rank {r} exceeds the layer's size ({} in, {} out); FedSVD needs r ≤ min(in, out)",
            a.cols, b.rows
        ));
    }
    let (u, sigma, v) = product_svd(b, a);
    let new_a = v.transpose();
    let us = scale_columns(&u, &sigma);
    Ok((new_a, us))
}
