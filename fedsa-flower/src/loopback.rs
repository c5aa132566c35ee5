//! An in-process transport: each node is a [`NodeSettings`] answered by [`crate::handle`] on
//! its own thread, as a SuperNode would, so a round's clients train at once. A node can be
//! taken down and brought back (under a new id, as a restarted SuperNode is).

use std::collections::BTreeMap;
use std::thread::JoinHandle;

use anyhow::{Result, anyhow, bail};

use crate::link::Link;
use crate::node::NodeSettings;
use crate::wire::Envelope;

/// Nodes in this process.
#[derive(Default)]
pub struct Loopback {
    nodes: BTreeMap<u64, NodeSettings>,
    next_id: u64,
    next_ticket: u64,
    pending: BTreeMap<u64, (u64, JoinHandle<Envelope>)>,
    /// Pushes to these nodes fail, as to a node that went away.
    down: Vec<u64>,
}

impl Loopback {
    pub fn new() -> Self {
        Self {
            next_id: 100,
            ..Self::default()
        }
    }

    /// Connects a node; returns its id.
    pub fn add(&mut self, settings: NodeSettings) -> u64 {
        self.next_id += 1;
        self.nodes.insert(self.next_id, settings);
        self.next_id
    }

    /// Disconnects a node.
    pub fn remove(&mut self, node: u64) {
        self.nodes.remove(&node);
        self.down.push(node);
    }
}

impl Link for Loopback {
    fn node_ids(&mut self) -> Result<Vec<u64>> {
        Ok(self.nodes.keys().copied().collect())
    }

    fn push(&mut self, node: u64, message: Envelope) -> Result<u64> {
        let Some(settings) = self.nodes.get(&node).cloned() else {
            bail!("node {node} is not connected");
        };
        self.next_ticket += 1;
        let worker = std::thread::spawn(move || crate::node::handle(&settings, &message));
        self.pending.insert(self.next_ticket, (node, worker));
        Ok(self.next_ticket)
    }

    fn pull(&mut self, ticket: u64) -> Result<Envelope> {
        let (node, worker) = self
            .pending
            .remove(&ticket)
            .ok_or_else(|| anyhow!("no message {ticket} is awaiting a reply"))?;
        let reply = worker
            .join()
            .map_err(|_| anyhow!("node {node} crashed while handling message {ticket}"))?;
        if self.down.contains(&node) {
            bail!("node {node} went away before it replied");
        }
        Ok(reply)
    }
}
