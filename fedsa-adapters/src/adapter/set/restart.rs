//! FLoRA's restart: once the server has merged what the factors learned into the frozen
//! weight, every client draws its low-rank factors afresh by the spec's own init rules (LoRA:
//! A Kaiming-uniform, B zero, so the product starts at zero again) from a new seed.

use candle_core::Tensor;

use fedsa_core::{Error, ParamSet, Result};

use super::{AdapterSet, init_param};
use crate::adapter::ops::INPUTS;
use crate::adapter::plan::Body;
use crate::adapter::shape::Dims;
use crate::backend::Context;

impl AdapterSet {
    /// Every adapted module's factors A and B drawn anew from `seed` by the spec's init
    /// rules, at this set's rank; an error when the adapter is not the plain product `s·B·A`.
    pub fn fresh_factors(&self, seed: u64) -> Result<ParamSet> {
        let Body::LowRank { a, b, .. } = self.plan.body else {
            return Err(Error::param(
                self.spec.name.clone(),
                "only an adapter whose update is the low-rank product s·B·A (lora, rslora) \
                 can start its factors over",
            ));
        };
        let in_max = self.layers.values().map(|l| l.shape[1]).max().unwrap_or(1);
        let out_max = self.layers.values().map(|l| l.shape[0]).max().unwrap_or(1);
        let mut out = ParamSet::new();
        for la in self.layers.values() {
            let dims = Dims {
                inp: la.shape[1],
                out: la.shape[0],
                rank: self.rank,
                in_max,
                out_max,
            };
            for reg in [a, b] {
                let Some((_, full)) = la.trainable.iter().find(|(r, _)| *r == reg) else {
                    continue;
                };
                let p = &self.spec.params[reg - INPUTS.len()];
                let value: Tensor = init_param(p, full, &dims, seed, None, &self.device)?;
                let data = value
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .ctx("reading a fresh factor")?;
                out.insert(full.clone(), value.dims().to_vec(), data)?;
            }
        }
        Ok(out)
    }
}
