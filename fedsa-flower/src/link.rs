//! The server's way to its nodes, and which node is which client.
//!
//! [`Link`] is what the transport must do (Flower's `Grid` in the ServerApp; an in-process
//! loopback in tests): list the connected nodes, send a message, wait for its reply. The
//! [`Directory`] maps clients to nodes from each node's [`Hello`], checks every node's layout
//! against client 0's before the run starts, and finds a client's node again after it was
//! lost (a node restarted with its state folder comes back under a new node id).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fedsa_core::{ParamSet, Role};

use crate::wire::{Envelope, Hello, Reply, Request};

/// A transport to the federation's nodes.
pub trait Link: Send {
    /// The ids of the nodes connected now.
    fn node_ids(&mut self) -> Result<Vec<u64>>;
    /// Sends `message` to `node`; returns a ticket for its reply.
    fn push(&mut self, node: u64, message: Envelope) -> Result<u64>;
    /// Waits for the reply to `ticket`; an error when the node failed or did not answer in
    /// the link's time.
    fn pull(&mut self, ticket: u64) -> Result<Envelope>;
}

/// A node's introduction as the server received it.
#[derive(Debug, Clone)]
pub struct Introduction {
    pub node: u64,
    pub hello: Hello,
    /// Its initial tensors (the seeded init).
    pub init: ParamSet,
}

/// Clients to nodes.
pub struct Directory {
    link: Box<dyn Link>,
    config: String,
    nodes: BTreeMap<usize, u64>,
    /// Every client's introduction at the start: a node that comes back must match it.
    reference: BTreeMap<usize, Hello>,
    /// Nodes that were asked and are not (or not fit to be) any client's.
    refused: BTreeMap<u64, String>,
}

impl Directory {
    /// Waits (up to `wait`) until `num_clients` nodes are connected, greets them, and maps
    /// clients 0..num_clients to them; refuses the run when a client has no node, two nodes
    /// claim one client, or a node's layout differs from client 0's.
    pub fn connect(
        mut link: Box<dyn Link>,
        config: String,
        num_clients: usize,
        wait: Duration,
    ) -> Result<(Self, Vec<Introduction>)> {
        let started = Instant::now();
        let ids = loop {
            let ids = link.node_ids()?;
            if ids.len() >= num_clients {
                break ids;
            }
            if started.elapsed() >= wait {
                bail!(
                    "{} of the config's {num_clients} clients' nodes connected within {:.0} s",
                    ids.len(),
                    wait.as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        let mut dir = Self {
            link,
            config,
            nodes: BTreeMap::new(),
            reference: BTreeMap::new(),
            refused: BTreeMap::new(),
        };
        let mut found: BTreeMap<usize, Introduction> = BTreeMap::new();
        for (_, intro) in dir.greet(&ids)? {
            let intro = intro?;
            let client = intro.hello.client;
            if client >= num_clients {
                bail!(
                    "node {} says it is client {client}, but the config has {num_clients} clients \
                     (node config `partition-id`)",
                    intro.node
                );
            }
            if let Some(other) = found.get(&client) {
                bail!(
                    "nodes {} and {} both say they are client {client} (node config `partition-id`)",
                    other.node,
                    intro.node
                );
            }
            found.insert(client, intro);
        }
        if let Some(missing) = (0..num_clients).find(|c| !found.contains_key(c)) {
            bail!("no connected node is client {missing} (node config `partition-id`)");
        }
        let first = &found[&0];
        for intro in found.values().skip(1) {
            check_layout(first, intro)?;
        }
        for (c, intro) in &found {
            dir.nodes.insert(*c, intro.node);
            dir.reference.insert(*c, intro.hello.clone());
        }
        Ok((dir, found.into_values().collect()))
    }

    /// Says hello to `ids` (all at once, then waits for each); per node, its introduction or
    /// why there is none.
    fn greet(&mut self, ids: &[u64]) -> Result<Vec<(u64, Result<Introduction>)>> {
        let hello = Envelope::new(
            &Request::Hello {
                config: self.config.clone(),
            },
            &ParamSet::new(),
        )?;
        let tickets: Vec<(u64, Result<u64>)> = ids
            .iter()
            .map(|&id| (id, self.link.push(id, hello.clone())))
            .collect();
        let mut out = Vec::new();
        for (node, ticket) in tickets {
            let intro = ticket.and_then(|t| self.introduction(node, t));
            out.push((node, intro));
        }
        Ok(out)
    }

    fn introduction(&mut self, node: u64, ticket: u64) -> Result<Introduction> {
        let reply = self
            .link
            .pull(ticket)
            .with_context(|| format!("node {node} did not answer the server's hello"))?;
        match reply.header::<Reply>(&format!("node {node}'s hello"))? {
            Reply::Hello(hello) => Ok(Introduction {
                node,
                hello: *hello,
                init: reply.params()?,
            }),
            Reply::Error { message } => bail!("node {node} refused the run: {message}"),
            other => bail!("node {node} answered hello with {other:?}"),
        }
    }

    /// The run's config as the nodes receive it.
    pub fn config(&self) -> &str {
        &self.config
    }

    /// Sends `message` to client `c`'s node (looking for it again when it was lost).
    pub fn push(&mut self, c: usize, message: Envelope) -> Result<u64> {
        if !self.nodes.contains_key(&c) {
            self.rediscover()?;
        }
        let Some(&node) = self.nodes.get(&c) else {
            let refused: Vec<String> = self
                .refused
                .iter()
                .map(|(n, why)| format!("node {n} was refused: {why}"))
                .collect();
            bail!(
                "client {c} has no node: it was lost and none has come back as client {c}{}",
                if refused.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", refused.join("; "))
                }
            );
        };
        self.link.push(node, message).map_err(|e| {
            self.nodes.remove(&c);
            e.context(format!("sending to client {c}'s node {node}"))
        })
    }

    /// Waits for the reply to `ticket` from client `c`'s node; a failure loses the node.
    pub fn pull(&mut self, c: usize, ticket: u64) -> Result<Envelope> {
        self.link.pull(ticket).map_err(|e| {
            let node = self.nodes.remove(&c);
            e.context(format!("client {c}'s node {node:?} gave no reply"))
        })
    }

    /// Greets nodes not yet known, and maps those that are a lost client with its layout.
    fn rediscover(&mut self) -> Result<()> {
        let known: Vec<u64> = self.nodes.values().copied().collect();
        let new: Vec<u64> = self
            .link
            .node_ids()?
            .into_iter()
            .filter(|id| !known.contains(id) && !self.refused.contains_key(id))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        for (node, intro) in self.greet(&new)? {
            // A node that does not answer may be one that went away and is still listed, or
            // one coming up: ask it again next time.
            let Ok(intro) = intro else { continue };
            let c = intro.hello.client;
            if self.nodes.contains_key(&c) {
                // Its client's node still answers; it may be needed when that one goes.
                continue;
            }
            let fits = match self.reference.get(&c) {
                None => Err(format!(
                    "it says it is client {c}, which this run does not have"
                )),
                Some(reference) => same_layout(reference, &intro.hello),
            };
            match fits {
                Ok(()) => {
                    self.nodes.insert(c, node);
                }
                Err(why) => {
                    self.refused.insert(node, why);
                }
            }
        }
        Ok(())
    }
}

/// A node whose model or adapter differs from client 0's cannot join: the error names it.
fn check_layout(first: &Introduction, other: &Introduction) -> Result<()> {
    same_layout(&first.hello, &other.hello).map_err(|why| {
        anyhow::anyhow!(
            "node {} (client {}) is refused: {why}",
            other.node,
            other.hello.client
        )
    })?;
    for (name, t) in other.init.iter() {
        if let Some(own) = first.init.get(name)
            && own.shape() != t.shape()
            && !is_factor(&first.hello, name)
        {
            bail!(
                "node {} (client {}) is refused: its tensor `{name}` has shape {:?} where client \
                 0's has {:?} (a different model or adapter)",
                other.node,
                other.hello.client,
                t.shape(),
                own.shape()
            );
        }
    }
    Ok(())
}

/// Low-rank factors may differ in rank between clients; the federation checks whether the
/// strategy allows it.
fn is_factor(hello: &Hello, name: &str) -> bool {
    hello.modules.iter().any(|m| m.a == name || m.b == name)
}

fn same_layout(reference: &Hello, other: &Hello) -> std::result::Result<(), String> {
    if reference.roles != other.roles {
        let name = |roles: &BTreeMap<String, Role>, of: &BTreeMap<String, Role>| {
            roles
                .iter()
                .find(|(n, r)| of.get(*n) != Some(r))
                .map(|(n, r)| format!("`{n}` ({})", r.as_str()))
        };
        let what = name(&other.roles, &reference.roles)
            .map(|n| format!("it has {n}, which client {} lacks", reference.client))
            .or_else(|| {
                name(&reference.roles, &other.roles)
                    .map(|n| format!("it lacks {n}, which client {} has", reference.client))
            })
            .unwrap_or_default();
        return Err(format!(
            "its adapted parameters differ from client {}'s: {what}",
            reference.client
        ));
    }
    if reference.label_names != other.label_names {
        return Err(format!(
            "its labels {:?} differ from client {}'s {:?}",
            other.label_names, reference.client, reference.label_names
        ));
    }
    Ok(())
}
