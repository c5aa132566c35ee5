//! The messages between the server and a node. A message is a JSON header and a list of
//! named f32 tensors: the Python side carries the header in a Flower `ConfigRecord` and the
//! tensors as NumPy arrays in an `ArrayRecord`, so Flower's own mods see ordinary arrays.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use fedsa_core::{EvalMetrics, LowRankModule, ParamSet, Role, TensorData, TrainStats};
use fedsa_data::ClientReport;
use serde::{Deserialize, Serialize};

/// One named tensor on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct WireTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A message: its header (a [`Request`] or [`Reply`] as JSON) and its tensors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Envelope {
    pub header: String,
    pub tensors: Vec<WireTensor>,
}

impl Envelope {
    pub fn new<T: Serialize>(header: &T, params: &ParamSet) -> Result<Self> {
        Ok(Self {
            header: serde_json::to_string(header)?,
            tensors: to_wire(params),
        })
    }

    /// The header, read as `T`; `what` names the message in errors.
    pub fn header<T: for<'de> Deserialize<'de>>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.header).with_context(|| format!("reading the header of {what}"))
    }

    /// The tensors as a parameter set (names must be distinct, sizes must match shapes).
    pub fn params(&self) -> Result<ParamSet> {
        from_wire(&self.tensors)
    }
}

pub fn to_wire(params: &ParamSet) -> Vec<WireTensor> {
    params
        .iter()
        .map(|(name, t)| WireTensor {
            name: name.clone(),
            shape: t.shape().to_vec(),
            data: t.data().to_vec(),
        })
        .collect()
}

pub fn from_wire(tensors: &[WireTensor]) -> Result<ParamSet> {
    let mut set = ParamSet::new();
    for t in tensors {
        if set.contains(&t.name) {
            bail!("tensor `{}` appears twice in one message", t.name);
        }
        let tensor = TensorData::new(t.shape.clone(), t.data.clone())
            .with_context(|| format!("tensor `{}`", t.name))?;
        set.insert_tensor(t.name.clone(), tensor);
    }
    Ok(set)
}

/// What the server asks of a node. Every request carries the run's config, so a node (whose
/// ClientApp process Flower starts afresh for each message) needs nothing else to rebuild its
/// client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// Who are you: the node's client index, layout and initial tensors.
    Hello { config: String },
    /// Apply `ops` (the tensors are the `set` ops' values, in order), train one round, send
    /// back the tensors named in `returns`.
    Train {
        config: String,
        round: usize,
        ops: Vec<Op>,
        returns: Vec<String>,
    },
    /// Apply `ops`, evaluate on the node's own test split.
    Evaluate {
        config: String,
        round: usize,
        ops: Vec<Op>,
    },
}

/// A change the server made to a client between two messages, applied in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Go back to the state after this round (a resumed server continues from its checkpoint).
    Restore { round: usize },
    /// Overwrite the next `count` tensors of the message (the global state the client lacks).
    Set { count: usize },
    /// Re-initialise the low-rank factors from this seed (FLoRA, after a merge).
    Restart { seed: u64 },
    /// Which roles train from now on (RoLoRA's alternation).
    Roles { roles: Vec<Role> },
}

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Hello(Box<Hello>),
    Trained {
        stats: TrainStats,
    },
    Evaluated {
        metrics: EvalMetrics,
    },
    /// The node could not do what was asked; the server records the message as the client's
    /// failure.
    Error {
        message: String,
    },
}

/// A node's introduction: enough for the server to check its layout against the others' and
/// to stand in for it. Its tensors are the client's initial values (the seeded init, nothing
/// learned), which the server takes as its initial global state from client 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub client: usize,
    pub roles: BTreeMap<String, Role>,
    pub modules: Vec<WireModule>,
    pub num_train_examples: usize,
    pub label_names: Vec<String>,
    pub report: ClientReport,
    pub adapter_plan: String,
}

/// [`LowRankModule`] on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireModule {
    pub name: String,
    pub a: String,
    pub b: String,
    pub rank: usize,
    pub scale: f64,
}

impl From<&LowRankModule> for WireModule {
    fn from(m: &LowRankModule) -> Self {
        Self {
            name: m.name.clone(),
            a: m.a.clone(),
            b: m.b.clone(),
            rank: m.rank,
            scale: m.scale,
        }
    }
}

impl From<&WireModule> for LowRankModule {
    fn from(m: &WireModule) -> Self {
        Self {
            name: m.name.clone(),
            a: m.a.clone(),
            b: m.b.clone(),
            rank: m.rank,
            scale: m.scale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_bad_tensors_are_refused() {
        let mut p = ParamSet::new();
        p.insert("x.a", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])
            .unwrap();
        let req = Request::Train {
            config: "seed = 1".into(),
            round: 3,
            ops: vec![Op::Restore { round: 2 }, Op::Set { count: 1 }],
            returns: vec!["x.a".into()],
        };
        let env = Envelope::new(&req, &p).unwrap();
        assert_eq!(env.header::<Request>("a request").unwrap(), req);
        assert_eq!(env.params().unwrap(), p);
        let mut twice = env.clone();
        twice.tensors.push(twice.tensors[0].clone());
        assert!(twice.params().unwrap_err().to_string().contains("twice"));
        let mut short = env;
        short.tensors[0].data.pop();
        assert!(format!("{:#}", short.params().unwrap_err()).contains("x.a"));
    }
}
