//! A client's trainable tensors: adapter factors and head, each a `Var` with its role. A role
//! the strategy does not train is handed to the forward pass detached, so no gradient is
//! computed for it and the optimizer never sees it.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{Tensor, Var};

use fedsa_core::{Error, ParamSet, Result, Role};

use crate::backend::Context;

struct Entry {
    var: Var,
    role: Role,
}

/// Which parameters a forward pass tracks for gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// Those whose role trains (training, and gradient checks in eval mode).
    Trained,
    /// None: inference, whose result is never differentiated.
    None,
}

/// Named trainable tensors in name order.
pub struct ParamStore {
    entries: BTreeMap<String, Entry>,
    trained: BTreeSet<Role>,
}

impl ParamStore {
    /// Every tensor as a `Var`; all roles trained until [`ParamStore::set_trained`].
    pub fn new(initial: Vec<(String, Role, Tensor)>) -> Result<ParamStore> {
        let mut entries = BTreeMap::new();
        for (name, role, value) in initial {
            let var = Var::from_tensor(&value.detach()).ctx("creating a parameter")?;
            if entries.insert(name.clone(), Entry { var, role }).is_some() {
                return Err(Error::param(name, "declared twice"));
            }
        }
        Ok(ParamStore {
            entries,
            trained: Role::ALL.into_iter().collect(),
        })
    }

    /// Which roles train from now on.
    pub fn set_trained(&mut self, roles: impl IntoIterator<Item = Role>) {
        self.trained = roles.into_iter().collect();
    }

    pub fn trains(&self, role: Role) -> bool {
        self.trained.contains(&role)
    }

    /// The current value for a forward pass that records gradients as `track` says.
    pub fn value(&self, name: &str, track: Track) -> Result<Tensor> {
        match track {
            Track::Trained => self.tensor(name),
            Track::None => self.tensor(name).map(|t| t.detach()),
        }
    }

    /// The current value for a forward pass: tracked when its role trains, detached otherwise.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::param(name, "no such trainable parameter"))?;
        Ok(if self.trained.contains(&e.role) {
            e.var.as_tensor().clone()
        } else {
            e.var.as_tensor().detach()
        })
    }

    /// Every parameter's role.
    pub fn roles(&self) -> BTreeMap<String, Role> {
        self.entries
            .iter()
            .map(|(n, e)| (n.clone(), e.role))
            .collect()
    }

    /// The `Var`s whose roles train, by name.
    pub fn trained_vars(&self) -> Vec<(&str, &Var)> {
        self.entries
            .iter()
            .filter(|(_, e)| self.trained.contains(&e.role))
            .map(|(n, e)| (n.as_str(), &e.var))
            .collect()
    }

    /// Every `Var`, by name.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &Var, Role)> {
        self.entries
            .iter()
            .map(|(n, e)| (n.as_str(), &e.var, e.role))
    }

    /// Copies the named tensors out as plain data.
    pub fn export(&self, names: &[String]) -> Result<ParamSet> {
        let mut out = ParamSet::new();
        for name in names {
            let e = self
                .entries
                .get(name)
                .ok_or_else(|| Error::param(name, "no such parameter on this client"))?;
            let t = e.var.as_tensor();
            let data = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .ctx("reading a parameter")?;
            out.insert(name.clone(), t.dims().to_vec(), data)?;
        }
        Ok(out)
    }

    /// Overwrites parameters; every name must exist with the same shape and finite values.
    pub fn import(&self, params: &ParamSet) -> Result<()> {
        for (name, data) in params.iter() {
            let e = self
                .entries
                .get(name)
                .ok_or_else(|| Error::param(name, "no such parameter on this client"))?;
            let t = e.var.as_tensor();
            if data.shape() != t.dims() {
                return Err(Error::param(
                    name,
                    format!("shape {:?} where {:?} was expected", data.shape(), t.dims()),
                ));
            }
            if !data.is_finite() {
                return Err(Error::param(name, "holds NaN or infinite values"));
            }
            let value = Tensor::from_slice(data.data(), data.shape(), t.device())
                .ctx("writing a parameter")?;
            e.var.set(&value).ctx("writing a parameter")?;
        }
        Ok(())
    }

    /// Names of every parameter.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}
