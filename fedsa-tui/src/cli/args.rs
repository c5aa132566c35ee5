//! The command line: `fedsa run`, `fedsa tui`, `fedsa partition`, `fedsa plugins list`,
//! `fedsa export`, `fedsa predict`, `fedsa generate`, `fedsa analyze`, `fedsa compare`,
//! `fedsa flower`. With no subcommand, the TUI opens on the quickstart config.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The default config the TUI opens and the README's first command runs.
pub const QUICKSTART: &str = "examples/quickstart.toml";

#[derive(Debug, Parser)]
#[command(
    name = "fedsa",
    version,
    about = "Federated fine-tuning with selective aggregation of low-rank adapters (FedSA-LoRA)",
    after_help = strategies_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The built-in strategies, one line each, for `fedsa --help` (from the same table the config
/// and the TUI read).
pub fn strategies_help() -> String {
    let mut lines = vec!["Strategies ([strategy] name = ...):".to_string()];
    lines.extend(
        fedsa_core::BUILTINS
            .iter()
            .map(|b| format!("  {:<8} {}", b.name, b.summary)),
    );
    lines.push("  custom   per-role train/share from [strategy.roles]".into());
    lines.join("\n")
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a whole federation headless from a TOML config.
    Run {
        config: PathBuf,
        /// Continue the run folder's last complete checkpoint.
        #[arg(long)]
        resume: bool,
        /// Override the config's device (`cpu`, `cuda:N`).
        #[arg(long)]
        device: Option<String>,
        /// Override the config's run name (the run folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Override the config's output folder.
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Open the interactive terminal UI on a config.
    Tui { config: Option<PathBuf> },
    /// Show how a config splits the data into clients, without training.
    Partition {
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Plugins: list built-in and discovered ones.
    Plugins {
        #[command(subcommand)]
        action: PluginsAction,
        /// Also load these plugin libraries.
        #[arg(long = "plugin", global = true)]
        plugins: Vec<PathBuf>,
    },
    /// Write a client's personalised adapter in PEFT's layout (classification: SEQ_CLS with
    /// its head; generation: the decoder's CAUSAL_LM adapter) and fedsa_export.json.
    Export {
        run: PathBuf,
        #[arg(long)]
        client: usize,
        /// Read this checkpoint round instead of the last one.
        #[arg(long)]
        round: Option<usize>,
        #[arg(long)]
        out: PathBuf,
        /// Write into a folder that already holds files, replacing the export's files there.
        #[arg(long)]
        force: bool,
        /// A Hugging Face model with the adapter folded into the weights, which transformers
        /// loads without PEFT, instead of the PEFT adapter.
        #[arg(long)]
        merged: bool,
    },
    /// Print each label's probability for TEXT under a client's model.
    Predict {
        run: PathBuf,
        #[arg(long)]
        client: usize,
        /// Read this checkpoint round instead of the last one.
        #[arg(long)]
        round: Option<usize>,
        #[arg(required = true)]
        text: Vec<String>,
    },
    /// Continue each PROMPT with a client's model (generation runs), and print its answer.
    Generate {
        run: PathBuf,
        #[arg(long)]
        client: usize,
        /// Read this checkpoint round instead of the last one.
        #[arg(long)]
        round: Option<usize>,
        #[arg(required = true)]
        prompt: Vec<String>,
        /// Tokens to generate at most (default: the run's task.max_new_tokens).
        #[arg(long)]
        max_new_tokens: Option<usize>,
        /// Sampling temperature; 0 decodes greedily.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Nucleus sampling: keep the most likely tokens up to this probability mass.
        #[arg(long, default_value_t = 0.9)]
        top_p: f64,
        /// Seed of the sampler (with a temperature above 0).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Measure how alike the clients' learned A matrices are, and their B matrices, per module.
    Analyze {
        run: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Analyse this checkpoint round instead of the last one.
        #[arg(long)]
        round: Option<usize>,
        /// Measure the checkpoint's factors against the common init, or each client's update
        /// over one more local round from the checkpoint (for strategies that share a factor,
        /// e.g. FedIT); `auto` picks by strategy.
        #[arg(long, value_enum, default_value_t = FromArg::Auto)]
        from: FromArg,
        /// Where to write the heatmap (default: RUN/ab-similarity.png).
        #[arg(long)]
        png: Option<PathBuf>,
        /// Also write the JSON report to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
    /// Run a config as a real Flower federation on this machine: a SuperLink and one
    /// SuperNode per client on loopback, the fedsa app (`flwr run`), every process stopped at
    /// the end (also on Ctrl-C or failure). Needs `scripts/flower-setup` once.
    Flower(crate::cli::flower::FlowerArgs),
    /// Put runs side by side: accuracy, F1, per-client figures, bytes and time.
    Compare {
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Where to write the plots.
        #[arg(long, default_value = "compare.png")]
        png: PathBuf,
        /// Also write the JSON figures to this file.
        #[arg(long)]
        json_out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsAction {
    /// List built-in and found plugins with kind, name and ABI version.
    List,
}

/// `fedsa analyze --from`: where the clients' learned factors come from (the engine's
/// [`fedsa_engine::analyze::Mode`], spelled for the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FromArg {
    #[default]
    Auto,
    Checkpoint,
    LocalRound,
}

impl From<FromArg> for fedsa_engine::analyze::Mode {
    fn from(arg: FromArg) -> Self {
        match arg {
            FromArg::Auto => Self::Auto,
            FromArg::Checkpoint => Self::Checkpoint,
            FromArg::LocalRound => Self::LocalRound,
        }
    }
}
