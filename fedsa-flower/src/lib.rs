//! fedsa-flower: fedsa across machines, with Flower as the engine that carries the messages.
//!
//! - [`node`]: one client on its own machine, trained by the same Rust trainer as a
//!   one-process run, its private state in its own folder;
//! - [`server`]: the engine's round loop, unchanged, around [`remote::RemoteClient`]s;
//! - [`link`]: what the transport must do, and which node is which client;
//! - [`wire`]: the messages;
//! - [`loopback`]: an in-process transport (tests, and the proof that a run across nodes
//!   gives what a one-process run gives).
//!
//! The Python module (`fedsa-flower-py`) puts these behind Flower's ServerApp and ClientApp.

pub mod lines;
pub mod link;
pub mod loopback;
pub mod node;
pub mod remote;
pub mod server;
pub mod wire;

pub use link::{Directory, Link};
pub use node::{NodeSettings, StateDir, handle};
pub use server::{ServeOptions, serve};
pub use wire::{Envelope, WireTensor};
