//! Server rules that see a low-rank module's factors together: FedEx-LoRA's residual, FedSVD's
//! re-factorisation, and aggregators that combine each module's A and B in one call. A tensor-
//! wise aggregator sees one tensor at a time; these see `s·B·A` as the product it is.

use crate::{ClientUpdate, Error, ParamSet, Result, Role, TensorData};

/// The suffix of a module's server-made correction to its frozen weight (FedEx-LoRA):
/// `{module}.base_delta.weight`, `[out, in]` like the weight itself, already scaled.
pub const BASE_DELTA_SUFFIX: &str = "base_delta.weight";

/// The name of `module`'s frozen-weight correction.
pub fn base_delta_name(module: &str) -> String {
    format!("{module}.{BASE_DELTA_SUFFIX}")
}

/// Whether `name` is a frozen-weight correction (not a trainable parameter).
pub fn is_base_delta(name: &str) -> bool {
    name.ends_with(BASE_DELTA_SUFFIX)
}

/// One adapted module whose update is the plain low-rank product `scale · B · A`.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRankModule {
    /// The module's full name (`encoder.layer.0.attention.self.query`).
    pub name: String,
    /// The names of its factors: `a` is `[r, in]`, `b` is `[out, r]`.
    pub a: String,
    pub b: String,
    /// The rank `r` of this client's factors.
    pub rank: usize,
    /// The scale the product is multiplied by (`α/r`, or `α/√r` for rsLoRA).
    pub scale: f64,
}

/// One module's factors from one client.
#[derive(Debug, Clone, Copy)]
pub struct ModuleUpdate<'a> {
    pub client: usize,
    pub num_examples: usize,
    pub a: &'a TensorData,
    pub b: &'a TensorData,
}

impl LowRankModule {
    /// This module's factors in each update; every update must hold both.
    pub fn updates<'a>(&self, updates: &'a [ClientUpdate]) -> Result<Vec<ModuleUpdate<'a>>> {
        updates
            .iter()
            .map(|u| {
                Ok(ModuleUpdate {
                    client: u.client,
                    num_examples: u.num_examples,
                    a: u.params.require(&self.a)?,
                    b: u.params.require(&self.b)?,
                })
            })
            .collect()
    }

    /// `(rank, in, out)` from the shapes of `a` `[r, in]` and `b` `[out, r]`.
    pub fn dims(&self, a: &TensorData, b: &TensorData) -> Result<(usize, usize, usize)> {
        match (a.shape(), b.shape()) {
            ([r, inp], [out, r2]) if r == r2 => Ok((*r, *inp, *out)),
            (sa, sb) => Err(Error::param(
                self.name.clone(),
                format!("factors of shapes {sa:?} and {sb:?} are not [r, in] and [out, r]"),
            )),
        }
    }
}

/// What the server computes after the tensor-wise aggregate, with every low-rank module's
/// factors in view. `global` holds the new aggregate (and whatever this rule added before);
/// `updates` are the clients' uploads of this round; `aggregations` counts the rounds whose
/// aggregate changed the global state, this one included. Returns the names of the global
/// tensors it changed or added, so that exactly those go down to the clients.
pub trait ModuleRule: Send {
    /// A short name for reports.
    fn name(&self) -> &str;

    /// Whether the rule combines each module's factors itself, in place of the aggregator
    /// (FLoRA, FlexLoRA, HetLoRA): the clients' ranks may then differ, the aggregator sees only
    /// the other shared tensors, and the server holds each factor at the largest rank.
    fn aggregates_factors(&self) -> bool {
        false
    }

    /// Before the first round: every client's own modules (the same names, in the order of
    /// `modules` in [`ModuleRule::apply`], each with the client's rank and scale).
    fn set_clients(&mut self, clients: &[Vec<LowRankModule>]) {
        let _ = clients;
    }

    /// What client `client` receives of the global factor `role` (A or B) of module `module`
    /// (its index in `modules`), which the server holds at the largest rank. A rule that does
    /// not aggregate factors sends them as they are.
    fn client_factor(
        &self,
        client: usize,
        module: usize,
        role: Role,
        global: &TensorData,
    ) -> Result<TensorData> {
        let _ = (client, module, role);
        Ok(global.clone())
    }

    fn apply(
        &mut self,
        aggregations: u64,
        modules: &[LowRankModule],
        global: &mut ParamSet,
        updates: &[ClientUpdate],
    ) -> Result<Vec<String>>;
}

/// The weights `p_k = n_k / Σn` of `updates` (equal when no example counts are reported).
pub fn example_weights(updates: &[ModuleUpdate<'_>]) -> Vec<f64> {
    let total: usize = updates.iter().map(|u| u.num_examples).sum();
    updates
        .iter()
        .map(|u| {
            if total == 0 {
                1.0 / updates.len() as f64
            } else {
                u.num_examples as f64 / total as f64
            }
        })
        .collect()
}

/// The first `rank` components of a factor held at a larger rank: the first rows of `A`
/// (`[r, in]`), the first columns of `B` (`[out, r]`). `name` is for errors.
pub fn slice_factor(
    name: &str,
    role: Role,
    factor: &TensorData,
    rank: usize,
) -> Result<TensorData> {
    let &[rows, cols] = factor.shape() else {
        return Err(Error::param(
            name,
            format!("shape {:?} is not a matrix", factor.shape()),
        ));
    };
    let held = if role == Role::A { rows } else { cols };
    if rank > held {
        return Err(Error::param(
            name,
            format!("rank {rank} asked of a factor of rank {held}"),
        ));
    }
    let data = factor.data();
    match role {
        Role::A => TensorData::new(vec![rank, cols], data[..rank * cols].to_vec()),
        _ => TensorData::new(
            vec![rows, rank],
            data.chunks(cols)
                .flat_map(|row| &row[..rank])
                .copied()
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slicing_keeps_the_leading_rows_of_a_and_columns_of_b() {
        let a = TensorData::new(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let s = slice_factor("a", Role::A, &a, 2).unwrap();
        assert_eq!(
            (s.shape(), s.data()),
            (&[2, 2][..], &[1.0, 2.0, 3.0, 4.0][..])
        );
        let b = TensorData::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let s = slice_factor("b", Role::B, &b, 1).unwrap();
        assert_eq!((s.shape(), s.data()), (&[2, 1][..], &[1.0, 4.0][..]));
        assert!(slice_factor("b", Role::B, &b, 4).is_err());
    }
}
