//! fedsa-engine: everything a front end needs to run and read federations, and nothing that
//! draws. The command line and the TUI (and, next, a Flower app) are consumers of this crate;
//! they meet only here.
//!
//! - [`prepare`]: a config resolved into a prepared federation (plugins, adapter spec, model,
//!   data and partition, one trainer per client, the aggregator); writes nothing;
//!   [`prepare_client`]: one client alone, as a federation node builds it;
//! - [`execute`] / [`runner`]: running it, in the caller's thread or its own, reporting
//!   through the federation's event stream;
//! - [`run_dir`] and [`checkpoint`]: the run folder's one writer and reader, and checkpoints;
//! - [`session`] and [`export`]: one client of a finished run opened from its checkpoint, for
//!   predictions, generation and PEFT export;
//! - [`analysis`] / [`analyze`]: the A/B similarity across clients; [`runs`]: the model of a
//!   run that comparisons use;
//! - [`source`]: naming the config file (or flag) in errors found after loading it;
//! - [`verdict`]: whether a finished run counts as a success;
//! - [`units`]: byte and percent formatting, once.

pub mod analysis;
pub mod analyze;
pub mod checkpoint;
pub mod crash;
pub mod decoder;
pub mod execute;
pub mod export;
mod export_merged;
mod export_methods;
mod exported;
pub mod limits;
pub mod plugins;
pub mod prepare;
pub mod prepare_client;
pub mod round_line;
pub mod run_dir;
pub mod runner;
pub mod runs;
pub mod session;
pub mod source;
pub mod units;
pub mod verdict;

pub use execute::{RunOptions, execute, execute_prepared};
pub use prepare::{Prepared, Trainers, build_aggregator, load_partition, prepare, resolve_spec};
pub use prepare_client::{PreparedClient, prepare_client};
pub use runner::{RunHandle, spawn, spawn_with};
pub use source::name_config_source;
pub use verdict::FailedRun;
