//! The whole run as one serde struct, read from TOML. Unknown keys are errors, and every
//! validation error names the field (`federation.clients_per_round`) and the file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config_source::UNNAMED_CONFIG;
use crate::{
    ClientsConfig, Error, FederationSettings, Result, Role, RolePolicy, Strategy, TaskConfig,
};

/// A complete run description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name: the run folder is `output_dir/name`.
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `cpu` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Plugin libraries to load (aggregators, adapters).
    #[serde(default)]
    pub plugins: Vec<PathBuf>,
    /// Classification (the default) or generation.
    #[serde(default)]
    pub task: TaskConfig,
    pub model: ModelConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub partition: PartitionConfig,
    #[serde(default)]
    pub federation: FederationConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    #[serde(default)]
    pub adapter: AdapterConfig,
    /// Per-client ranks, local steps and batch sizes; every client alike when absent.
    #[serde(default, skip_serializing_if = "ClientsConfig::is_empty")]
    pub clients: ClientsConfig,
    #[serde(default)]
    pub strategy: StrategyConfig,
    /// Client-level differential privacy around the upload; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<crate::PrivacyConfig>,
}

/// The pretrained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A Hugging Face model folder (`config.json`, `model.safetensors`, `tokenizer.json`).
    pub path: PathBuf,
    /// Tokens per example after truncation.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
}

/// Where the examples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub format: DataFormat,
    /// A file, or for `glue` the task's folder; not used by `arithmetic`.
    #[serde(default)]
    pub path: PathBuf,
    #[serde(default)]
    pub text_column: Option<String>,
    #[serde(default)]
    pub text_pair_column: Option<String>,
    #[serde(default)]
    pub label_column: Option<String>,
    /// Label names in id order; inferred (sorted) from the data when absent.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// For `glue`: sst2, mnli, mnli-mm, qnli, qqp, rte, cola, mrpc.
    #[serde(default)]
    pub glue_task: Option<String>,
    /// Use at most this many examples (taken after a seeded shuffle).
    #[serde(default)]
    pub max_examples: Option<usize>,
    /// Share of each client's examples held out as its test split.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    RottenTomatoes,
    Csv,
    Tsv,
    Jsonl,
    Glue,
    /// Generation: the bundled generator of arithmetic word problems (no file).
    Arithmetic,
    /// Generation: GSM8K's JSONL layout (`question`, `answer` ending in `#### N`).
    Gsm8k,
    /// Generation: prompt/completion JSONL (`text_column`, `text_pair_column` name the fields).
    Instruction,
}

impl DataFormat {
    /// Every format's config name (`data.format`), in declaration order.
    pub const NAMES: [&'static str; 8] = [
        "rotten_tomatoes",
        "csv",
        "tsv",
        "jsonl",
        "glue",
        "arithmetic",
        "gsm8k",
        "instruction",
    ];

    /// Whether this format holds prompt/response pairs for a generation task.
    pub fn is_generation(self) -> bool {
        matches!(
            self,
            DataFormat::Arithmetic | DataFormat::Gsm8k | DataFormat::Instruction
        )
    }
}

/// How examples are split into clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    #[serde(default = "default_partition_kind")]
    pub kind: PartitionKind,
    /// Dirichlet concentration over labels: small is skewed, large is near IID.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Minimum examples per client (Dirichlet resamples until met).
    #[serde(default = "default_min_examples")]
    pub min_examples: usize,
    /// For `key`: the column whose values group examples (e.g. `movie_name`).
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    Iid,
    Dirichlet,
    Key,
}

impl PartitionKind {
    /// Every partitioner's config name (`partition.kind`).
    pub const NAMES: [&'static str; 3] = ["iid", "dirichlet", "key"];
}

/// The federation's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    #[serde(default = "default_num_clients")]
    pub num_clients: usize,
    #[serde(default = "default_num_clients")]
    pub clients_per_round: usize,
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    #[serde(default)]
    pub failure_rate: f64,
    /// The run counts as failed (a non-zero exit) when more than this fraction of the sampled
    /// client-rounds failed; unset, only a run in which no client ever succeeded does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_rate: Option<f64>,
    #[serde(default = "one")]
    pub eval_every: usize,
    /// Write a checkpoint every this many rounds (0: never).
    #[serde(default = "one")]
    pub checkpoint_every: usize,
}

/// Local training on each client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Optimizer steps per round; ignored when `local_epochs` is set.
    #[serde(default = "default_local_steps")]
    pub local_steps: usize,
    /// Passes over the client's training split per round, instead of `local_steps`.
    #[serde(default)]
    pub local_epochs: Option<usize>,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_eval_batch_size")]
    pub eval_batch_size: usize,
    #[serde(default)]
    pub optimizer: OptimizerKind,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// Warmup steps, counted over the whole run's local steps.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Clip the global gradient norm to this (none when absent).
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    #[default]
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Linear,
}

/// The adapter placed on the target modules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// `lora`, `rslora`, `vera`, or the name of an adapter from a plugin or spec file.
    #[serde(default = "default_adapter_kind")]
    pub kind: String,
    #[serde(default = "default_rank")]
    pub rank: usize,
    #[serde(default = "default_lora_alpha")]
    pub alpha: f64,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default = "default_targets")]
    pub target_modules: Vec<String>,
    /// An adapter spec file to use instead of a built-in or plugin adapter.
    #[serde(default)]
    pub spec: Option<PathBuf>,
}

/// Which roles train and are shared, and how shared tensors are combined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    /// `fedsa`, `fedit`, `ffa`, `local`, or `custom` with `roles` set.
    #[serde(default = "default_strategy")]
    pub name: String,
    #[serde(default = "default_aggregator")]
    pub aggregator: String,
    /// Free-form options handed to the aggregator (e.g. `trim = 0.2`).
    #[serde(default)]
    pub aggregator_options: toml::Table,
    /// Per-role policies for `custom` (keys `a`, `b`, `head`).
    #[serde(default)]
    pub roles: Option<CustomRoles>,
    /// RoLoRA: the factor trained in odd rounds (`a`, the default, or `b`).
    #[serde(default)]
    pub first_factor: Option<Role>,
    /// FedSVD: re-factorise A and B every this many aggregations (default 1).
    #[serde(default)]
    pub refresh_every: Option<usize>,
    /// The released FedSA code's shared-model mode (`federate.share_local_model: True`): B and
    /// the head handed from client to client in sampling order, every client evaluated with
    /// the last ones. Off by default; for reproducing the paper's numbers like for like.
    #[serde(default)]
    pub share_local_model: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRoles {
    pub a: RolePolicy,
    pub b: RolePolicy,
    pub head: RolePolicy,
}

fn default_name() -> String {
    "run".into()
}
fn default_seed() -> u64 {
    42
}
fn default_device() -> String {
    "cpu".into()
}
fn default_output_dir() -> PathBuf {
    PathBuf::from("runs")
}
fn default_max_length() -> usize {
    128
}
fn default_test_fraction() -> f64 {
    0.2
}
fn default_partition_kind() -> PartitionKind {
    PartitionKind::Dirichlet
}
fn default_alpha() -> f64 {
    0.5
}
fn default_min_examples() -> usize {
    10
}
fn default_num_clients() -> usize {
    3
}
fn default_rounds() -> usize {
    10
}
fn one() -> usize {
    1
}
fn default_local_steps() -> usize {
    10
}
fn default_batch_size() -> usize {
    16
}
fn default_eval_batch_size() -> usize {
    64
}
fn default_lr() -> f64 {
    5e-4
}
fn default_weight_decay() -> f64 {
    0.01
}
fn default_momentum() -> f64 {
    0.9
}
#[allow(clippy::unnecessary_wraps)]
fn default_max_grad_norm() -> Option<f64> {
    Some(1.0)
}
fn default_adapter_kind() -> String {
    "lora".into()
}
fn default_rank() -> usize {
    8
}
fn default_lora_alpha() -> f64 {
    16.0
}
fn default_dropout() -> f64 {
    0.05
}
/// The modules a generation run adapts unless `adapter.target_modules` says otherwise.
pub const DECODER_TARGETS: [&str; 2] = ["q_proj", "v_proj"];

fn default_targets() -> Vec<String> {
    vec!["query".into(), "value".into()]
}
fn default_strategy() -> String {
    "fedsa".into()
}
fn default_aggregator() -> String {
    "fedavg".into()
}

impl Default for PartitionConfig {
    fn default() -> Self {
        Self {
            kind: default_partition_kind(),
            alpha: default_alpha(),
            min_examples: default_min_examples(),
            key: None,
        }
    }
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            num_clients: default_num_clients(),
            clients_per_round: default_num_clients(),
            rounds: default_rounds(),
            failure_rate: 0.0,
            max_failure_rate: None,
            eval_every: 1,
            checkpoint_every: 1,
        }
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            local_steps: default_local_steps(),
            local_epochs: None,
            batch_size: default_batch_size(),
            eval_batch_size: default_eval_batch_size(),
            optimizer: OptimizerKind::default(),
            lr: default_lr(),
            weight_decay: default_weight_decay(),
            momentum: default_momentum(),
            schedule: ScheduleKind::default(),
            warmup_steps: 0,
            max_grad_norm: default_max_grad_norm(),
        }
    }
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            kind: default_adapter_kind(),
            rank: default_rank(),
            alpha: default_lora_alpha(),
            dropout: default_dropout(),
            target_modules: default_targets(),
            spec: None,
        }
    }
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            name: default_strategy(),
            aggregator: default_aggregator(),
            aggregator_options: toml::Table::new(),
            roles: None,
            first_factor: None,
            refresh_every: None,
            share_local_model: false,
        }
    }
}

impl Config {
    /// Reads and validates a config file. Relative paths inside it stay as written (they are
    /// resolved against the working directory, like every command-line path).
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `source_name` (usually the file path) goes into errors.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Config> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| toml_error(text, source_name, &e))?;
        // A decoder's linear layers have other names than an encoder's: a generation config
        // that names no targets gets the decoder's usual ones (PEFT's LLaMA default), and the
        // resolved config written with a run says so.
        let targets_given = toml::from_str::<toml::Table>(text)
            .ok()
            .and_then(|t| t.get("adapter")?.as_table()?.get("target_modules").cloned())
            .is_some();
        if config.task.kind.is_generation() && !targets_given {
            config.adapter.target_modules = DECODER_TARGETS.map(str::to_string).to_vec();
        }
        config.validate(source_name)?;
        Ok(config)
    }

    /// The config with its relative input paths (model, data, adapter spec, plugins) found
    /// under `base`, for a process that runs elsewhere than where the config was written.
    #[must_use]
    pub fn input_paths_under(mut self, base: &Path) -> Config {
        let under = |p: &Path| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        };
        self.model.path = under(&self.model.path);
        self.data.path = under(&self.data.path);
        if let Some(spec) = &self.adapter.spec {
            self.adapter.spec = Some(under(spec));
        }
        self.plugins = self.plugins.iter().map(|p| under(p)).collect();
        self
    }

    /// The config as TOML, as written into a run folder.
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string_pretty(self).map_err(|e| Error::backend("serialising the config", e))
    }

    /// Checks every value a TOML parser cannot: ranges and cross-field consistency.
    pub fn validate(&self, source_name: &str) -> Result<()> {
        let bad = |field: &str, message: String| Err(Error::config(source_name, field, message));
        if self.name.is_empty()
            || self
                .name
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
            || self.name.starts_with('.')
        {
            return bad(
                "name",
                format!(
                    "`{}` must be non-empty letters, digits, '-', '_' or '.' (it names the run folder)",
                    self.name
                ),
            );
        }
        if self.device != "cpu" && parse_cuda_ordinal(&self.device).is_none() {
            return bad(
                "device",
                format!("`{}` is neither `cpu` nor `cuda:N`", self.device),
            );
        }
        if self.model.max_length < 2 {
            return bad(
                "model.max_length",
                format!("must be at least 2, got {}", self.model.max_length),
            );
        }
        let d = &self.data;
        if d.path.as_os_str().is_empty() && d.format != DataFormat::Arithmetic {
            return bad("data.path", "required for this data.format".into());
        }
        match (self.task.kind.is_generation(), d.format.is_generation()) {
            (true, false) => {
                return bad(
                    "data.format",
                    "a generation task needs prompt/response data: arithmetic, gsm8k or instruction"
                        .into(),
                );
            }
            (false, true) => {
                return bad(
                    "data.format",
                    "arithmetic, gsm8k and instruction data need [task] kind = \"generation\""
                        .into(),
                );
            }
            _ => {}
        }
        if self.task.kind.is_generation() && self.task.max_new_tokens == 0 {
            return bad("task.max_new_tokens", "must be at least 1".into());
        }
        if !(d.test_fraction > 0.0 && d.test_fraction < 1.0) {
            return bad(
                "data.test_fraction",
                format!("must be in (0, 1), got {}", d.test_fraction),
            );
        }
        if d.format == DataFormat::Glue && d.glue_task.is_none() {
            return bad(
                "data.glue_task",
                "required when data.format = \"glue\"".into(),
            );
        }
        if matches!(
            d.format,
            DataFormat::Csv | DataFormat::Tsv | DataFormat::Jsonl
        ) && (d.text_column.is_none() || d.label_column.is_none())
        {
            let field = if d.text_column.is_none() {
                "data.text_column"
            } else {
                "data.label_column"
            };
            return bad(field, "required for csv, tsv and jsonl data".into());
        }
        if let Some(labels) = &d.labels
            && labels.len() < 2
        {
            return bad(
                "data.labels",
                "a classifier needs at least two labels".into(),
            );
        }
        if d.max_examples == Some(0) {
            return bad("data.max_examples", "must be positive when set".into());
        }
        let p = &self.partition;
        if p.kind == PartitionKind::Dirichlet && !(p.alpha > 0.0 && p.alpha.is_finite()) {
            return bad("partition.alpha", format!("must be > 0, got {}", p.alpha));
        }
        if p.kind == PartitionKind::Key && p.key.is_none() {
            return bad(
                "partition.key",
                "required when partition.kind = \"key\"".into(),
            );
        }
        let f = &self.federation;
        if f.num_clients == 0 {
            return bad("federation.num_clients", "must be at least 1".into());
        }
        if f.clients_per_round == 0 || f.clients_per_round > f.num_clients {
            return bad(
                "federation.clients_per_round",
                format!(
                    "must be between 1 and federation.num_clients ({}), got {}",
                    f.num_clients, f.clients_per_round
                ),
            );
        }
        if f.rounds == 0 {
            return bad("federation.rounds", "must be at least 1".into());
        }
        if !(0.0..1.0).contains(&f.failure_rate) {
            return bad(
                "federation.failure_rate",
                format!("must be in [0, 1), got {}", f.failure_rate),
            );
        }
        if let Some(rate) = f.max_failure_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return bad(
                "federation.max_failure_rate",
                format!("must be in [0, 1], got {rate}"),
            );
        }
        if f.eval_every == 0 {
            return bad("federation.eval_every", "must be at least 1".into());
        }
        let t = &self.training;
        if t.local_steps == 0 && t.local_epochs.is_none() {
            return bad("training.local_steps", "must be at least 1".into());
        }
        if t.local_epochs == Some(0) {
            return bad(
                "training.local_epochs",
                "must be at least 1 when set".into(),
            );
        }
        if t.batch_size == 0 {
            return bad("training.batch_size", "must be at least 1".into());
        }
        if t.eval_batch_size == 0 {
            return bad("training.eval_batch_size", "must be at least 1".into());
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return bad("training.lr", format!("must be > 0, got {}", t.lr));
        }
        if !(t.weight_decay >= 0.0 && t.weight_decay.is_finite()) {
            return bad(
                "training.weight_decay",
                format!("must be >= 0, got {}", t.weight_decay),
            );
        }
        if !(0.0..1.0).contains(&t.momentum) {
            return bad(
                "training.momentum",
                format!("must be in [0, 1), got {}", t.momentum),
            );
        }
        if let Some(g) = t.max_grad_norm
            && !(g > 0.0 && g.is_finite())
        {
            return bad("training.max_grad_norm", format!("must be > 0, got {g}"));
        }
        let a = &self.adapter;
        if a.rank == 0 {
            return bad("adapter.rank", "must be at least 1".into());
        }
        if !(a.alpha > 0.0 && a.alpha.is_finite()) {
            return bad("adapter.alpha", format!("must be > 0, got {}", a.alpha));
        }
        if !(0.0..1.0).contains(&a.dropout) {
            return bad(
                "adapter.dropout",
                format!("must be in [0, 1), got {}", a.dropout),
            );
        }
        if a.target_modules.is_empty() {
            return bad("adapter.target_modules", "name at least one module".into());
        }
        if a.kind.is_empty() {
            return bad("adapter.kind", "must not be empty".into());
        }
        self.clients
            .validate(self.federation.num_clients, source_name)?;
        let strategy = self.strategy(source_name)?;
        self.check_rank_support(&strategy, source_name)?;
        if self.strategy.aggregator.is_empty() {
            return bad("strategy.aggregator", "must not be empty".into());
        }
        crate::privacy::validate(self, source_name)
    }

    /// The strategy this config names (built-in, or `custom` from `strategy.roles`), with its
    /// settings applied.
    pub fn strategy(&self, source_name: &str) -> Result<Strategy> {
        let s = &self.strategy;
        let bad = |field: &str, message: String| Err(Error::config(source_name, field, message));
        let mut strategy = match (s.name.as_str(), &s.roles) {
            ("custom", Some(r)) => Strategy::from_roles("custom", r.a, r.b, r.head),
            ("custom", None) => {
                return bad(
                    "strategy.roles",
                    "required when strategy.name = \"custom\"".into(),
                );
            }
            (name, Some(_)) => {
                return bad(
                    "strategy.roles",
                    format!("only allowed with strategy.name = \"custom\", not `{name}`"),
                );
            }
            (name, None) => match Strategy::builtin(name) {
                Ok(strategy) => strategy,
                Err(_) => {
                    return bad(
                        "strategy.name",
                        format!(
                            "unknown strategy `{name}` ({} or custom)",
                            crate::BUILTIN_STRATEGIES.join(", ")
                        ),
                    );
                }
            },
        };
        if let Some(first) = s.first_factor {
            if strategy.name != "rolora" {
                return bad(
                    "strategy.first_factor",
                    format!("only used by strategy `rolora`, not `{}`", strategy.name),
                );
            }
            if !matches!(first, Role::A | Role::B) {
                return bad(
                    "strategy.first_factor",
                    format!("must be `a` or `b`, not `{first}`"),
                );
            }
            strategy = Strategy::rolora_from(first);
        }
        if let Some(every) = s.refresh_every {
            if strategy.name != "fedsvd" {
                return bad(
                    "strategy.refresh_every",
                    format!("only used by strategy `fedsvd`, not `{}`", strategy.name),
                );
            }
            if every == 0 {
                return bad("strategy.refresh_every", "must be at least 1".into());
            }
            strategy = Strategy::fedsvd_every(every);
        }
        if s.share_local_model {
            let keeps = [Role::A, Role::B, Role::Head]
                .into_iter()
                .any(|r| strategy.trains(r) && !strategy.server_holds(r));
            if !matches!(strategy.name.as_str(), "fedsa" | "custom") || !keeps {
                return bad(
                    "strategy.share_local_model",
                    format!(
                        "only for `fedsa` (or a `custom` strategy that keeps a trained role on \
                         the client), not `{}`",
                        strategy.name
                    ),
                );
            }
            strategy.shared_model = true;
        }
        Ok(strategy)
    }

    /// The federation settings of this config.
    pub fn federation_settings(&self) -> FederationSettings {
        FederationSettings {
            num_clients: self.federation.num_clients,
            clients_per_round: self.federation.clients_per_round,
            rounds: self.federation.rounds,
            seed: self.seed,
            failure_rate: self.federation.failure_rate,
            eval_every: self.federation.eval_every,
        }
    }

    /// Whether `role` is trained under this config's strategy (a convenience for trainers).
    pub fn trains(&self, role: Role) -> bool {
        self.strategy(UNNAMED_CONFIG).is_ok_and(|s| s.trains(role))
    }
}

/// A TOML error (syntax or deserialization) as a config error: the field is the dotted key the
/// error is about, and the message ends with the line and column. Without a key (a broken
/// table header, a line with no key) the field is the line and column itself: never a token
/// quoted from the parser's message, which may be punctuation (`=`, `]`).
fn toml_error(text: &str, source_name: &str, e: &toml::de::Error) -> Error {
    let message = e.message().trim();
    let Some(span) = e.span() else {
        let field = missing_field(message).unwrap_or("<toml>");
        return Error::config(source_name, field, message);
    };
    let (line, column) = line_column(text, span.start);
    let at = format!("line {line}, column {column}");
    match key_path_of(text, &span, message) {
        // A key missing from the top of the file has no place in it worth pointing at.
        Some(field) if missing_field(message).is_some() && !field.contains('.') => {
            Error::config(source_name, field, message)
        }
        Some(field) => Error::config(source_name, field, format!("{message} ({at})")),
        None => Error::config(source_name, at, message),
    }
}

/// The field serde names in a "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// One key of a parsed document: its dotted path and where its key and value are written.
struct KeyAt {
    path: String,
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
    is_table: bool,
}

fn collect_keys(table: &toml::de::DeTable<'_>, prefix: &str, out: &mut Vec<KeyAt>) {
    for (key, value) in table {
        if key.get_ref().is_empty() {
            continue;
        }
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        let inner = value.get_ref().as_table();
        out.push(KeyAt {
            path: path.clone(),
            key: key.span(),
            value: value.span(),
            is_table: inner.is_some(),
        });
        if let Some(inner) = inner {
            collect_keys(inner, &path, out);
        }
    }
}

/// The dotted key a TOML error at `span` is about, found in the parsed document (or, after a
/// syntax error, in as much of it as the parser recovered):
/// - a missing field: the table whose span the error carries, plus the field's name;
/// - otherwise the deepest key whose key or value holds the span (an unknown key, a value of
///   the wrong type);
/// - otherwise (a syntax error inside a line) the last key written before it on its line.
fn key_path_of(text: &str, span: &std::ops::Range<usize>, message: &str) -> Option<String> {
    let (doc, _) = toml::de::DeTable::parse_recoverable(text);
    let mut keys = Vec::new();
    collect_keys(doc.get_ref(), "", &mut keys);
    if let Some(field) = missing_field(message) {
        // The document's own span is empty, so a field missing at the top matches no table.
        return Some(match keys.iter().find(|k| k.is_table && k.value == *span) {
            Some(table) => format!("{}.{field}", table.path),
            None => field.to_string(),
        });
    }
    let holds = |outer: &std::ops::Range<usize>| {
        !outer.is_empty() && outer.start <= span.start && span.end <= outer.end
    };
    let holding = keys
        .iter()
        .filter(|k| holds(&k.key) || holds(&k.value))
        .max_by_key(|k| k.path.matches('.').count())
        .map(|k| k.path.as_str());
    let line_start = text
        .get(..span.start)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |i| i + 1);
    let before_on_line = keys
        .iter()
        .filter(|k| k.key.start >= line_start && k.key.end <= span.start)
        .max_by_key(|k| k.key.start)
        .map(|k| k.path.as_str());
    let path = match (holding, before_on_line) {
        // A syntax error inside an inline table is about the key written just before it there.
        (Some(outer), Some(inner)) if inner.starts_with(&format!("{outer}.")) => inner,
        (Some(outer), _) => outer,
        (None, inner) => inner?,
    };
    Some(path.to_string())
}

/// `cuda:N` → `Some(N)`.
pub fn parse_cuda_ordinal(device: &str) -> Option<usize> {
    device.strip_prefix("cuda:")?.parse().ok()
}

#[cfg(test)]
mod tests {
    /// The choice lists front ends show are the names serde reads, every one of them.
    #[test]
    fn the_name_lists_are_the_names_serde_reads() {
        let formats: Vec<DataFormat> = DataFormat::NAMES
            .iter()
            .map(|n| serde_json::from_value(serde_json::json!(n)).unwrap())
            .collect();
        let distinct: std::collections::BTreeSet<String> =
            formats.iter().map(|f| format!("{f:?}")).collect();
        assert_eq!(distinct.len(), DataFormat::NAMES.len());
        for (f, n) in formats.iter().zip(DataFormat::NAMES) {
            assert_eq!(serde_json::to_value(f).unwrap(), serde_json::json!(n));
            // Every variant is listed: adding one without its name fails to compile here.
            match f {
                DataFormat::RottenTomatoes
                | DataFormat::Csv
                | DataFormat::Tsv
                | DataFormat::Jsonl
                | DataFormat::Glue
                | DataFormat::Arithmetic
                | DataFormat::Gsm8k
                | DataFormat::Instruction => {}
            }
        }
        for n in PartitionKind::NAMES {
            let k: PartitionKind = serde_json::from_value(serde_json::json!(n)).unwrap();
            match k {
                PartitionKind::Iid | PartitionKind::Dirichlet | PartitionKind::Key => {}
            }
        }
    }

    use super::*;

    const MINIMAL: &str = r#"
        [model]
        path = "assets/all-MiniLM-L6-v2"
        [data]
        format = "rotten_tomatoes"
        path = "assets/rotten_tomatoes.csv"
    "#;

    fn err_of(extra: &str) -> String {
        Config::from_toml_str(&format!("{extra}\n{MINIMAL}"), "test.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn minimal_config_gets_the_papers_defaults() {
        let c = Config::from_toml_str(MINIMAL, "test.toml").unwrap();
        assert_eq!(c.strategy.name, "fedsa");
        assert_eq!((c.adapter.rank, c.adapter.alpha), (8, 16.0));
        assert_eq!(c.partition.kind, PartitionKind::Dirichlet);
        assert_eq!(c.partition.alpha, 0.5);
        assert_eq!(c.strategy("t").unwrap(), Strategy::fedsa());
    }

    #[test]
    fn round_trips_through_toml() {
        let c = Config::from_toml_str(MINIMAL, "test.toml").unwrap();
        let again = Config::from_toml_str(&c.to_toml_string().unwrap(), "again.toml").unwrap();
        assert_eq!(c, again);
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = err_of("[federation]\nnum_clients = 3\nnum_clientz = 4\n");
        assert!(
            e.contains("test.toml")
                && e.contains("num_clientz")
                && e.contains("federation.num_clientz")
                && e.contains("line 3"),
            "{e}"
        );
    }

    /// The (field, message) of a config error from `text`.
    fn field_and_message(text: &str) -> (String, String) {
        match Config::from_toml_str(text, "t.toml") {
            Err(Error::Config {
                source_name,
                field,
                message,
            }) => {
                assert_eq!(source_name, "t.toml");
                (field, message)
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn missing_keys_are_named_by_their_dotted_path() {
        let (field, message) =
            field_and_message("[model]\nmax_length = 16\n[data]\nformat = \"csv\"\n");
        assert_eq!(field, "model.path", "{message}");
        assert!(message.contains("line 1"), "{message}");
        // The table before the one missing a key does not lend it its name.
        let (field, _) = field_and_message("[data]\nformat = \"csv\"\n[model]\nmax_length = 16\n");
        assert_eq!(field, "model.path");
        let (field, _) = field_and_message("[model]\npath = \"m\"\n[data]\npath = \"d.csv\"\n");
        assert_eq!(field, "data.format");
        let (field, _) = field_and_message("name = \"x\"\n[data]\nformat = \"csv\"\n");
        assert_eq!(field, "model");
        let (field, _) = field_and_message(&format!(
            "{MINIMAL}\n[strategy]\nname = \"custom\"\n[strategy.roles]\na = {{ train = true, share = false }}\nb = {{ train = true, share = true }}\n"
        ));
        assert_eq!(field, "strategy.roles.head");
    }

    #[test]
    fn syntax_errors_name_the_line_column_and_key_never_punctuation() {
        let (field, message) =
            field_and_message(&format!("{MINIMAL}\n[federation]\nrounds = = 3\n"));
        assert_eq!(field, "federation.rounds", "{message}");
        assert!(message.contains("line 9, column 10"), "{message}");
        let (field, message) =
            field_and_message("[model]\npath = \"m\"\nmodel_len = { a = = 3 }\n");
        assert_eq!(field, "model.model_len.a", "{message}");
        let (field, _) = field_and_message("name = \"x\n[model]\npath = \"m\"\n");
        assert_eq!(field, "name");
        for (text, at) in [
            ("= 3\n[model]\npath = \"m\"\n", "line 1, column 1"),
            ("[model\npath = \"m\"\n", "line 1, column 7"),
            ("name = \"x\"\n]\n", "line 2, column 1"),
        ] {
            let (field, message) = field_and_message(text);
            assert_eq!(field, at, "{text:?}: {message}");
            assert!(!message.contains("line"), "said twice: {message}");
        }
        // CRLF line ends count as one line end each.
        let (field, message) =
            field_and_message("name = \"x\"\r\n[federation]\r\nrounds = = 3\r\n");
        assert_eq!(field, "federation.rounds");
        assert!(message.contains("line 3, column 10"), "{message}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = err_of("[adapter]\nrank = \"eight\"\n");
        assert!(e.contains("test.toml") && e.contains("adapter.rank"), "{e}");
    }

    #[test]
    fn range_errors_name_the_field() {
        for (extra, field) in [
            ("[adapter]\nrank = 0", "adapter.rank"),
            (
                "[federation]\nnum_clients = 2\nclients_per_round = 3",
                "federation.clients_per_round",
            ),
            ("[partition]\nalpha = 0.0", "partition.alpha"),
            ("[partition]\nkind = \"key\"", "partition.key"),
            ("[training]\nlr = -1.0", "training.lr"),
            ("device = \"gpu\"", "device"),
            ("name = \"../escape\"", "name"),
            ("[strategy]\nname = \"fedx\"", "strategy.name"),
            ("[strategy]\nname = \"custom\"", "strategy.roles"),
            ("[task]\nkind = \"generation\"", "data.format"),
            ("[task]\nkind = \"sorting\"", "task.kind"),
            (
                "[federation]\nfailure_rate = 1.0",
                "federation.failure_rate",
            ),
        ] {
            let e = err_of(extra);
            assert!(e.contains(field), "{extra:?} gave {e}");
        }
    }

    #[test]
    fn generation_needs_prompt_response_data_and_the_generator_no_path() {
        let c = Config::from_toml_str(
            "[task]\nkind = \"generation\"\nmax_new_tokens = 8\n[model]\npath = \"m.gguf\"\n[data]\nformat = \"arithmetic\"\n",
            "gen.toml",
        )
        .unwrap();
        assert!(c.task.kind.is_generation() && c.data.path.as_os_str().is_empty());
        assert_eq!(c.adapter.target_modules, ["q_proj", "v_proj"]);
        let again = Config::from_toml_str(&c.to_toml_string().unwrap(), "again.toml").unwrap();
        assert_eq!(again, c);
        let e = Config::from_toml_str(
            "[model]\npath = \"m\"\n[data]\nformat = \"gsm8k\"\npath = \"g.jsonl\"\n",
            "cls.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cls.toml") && e.contains("data.format"), "{e}");
        let e = Config::from_toml_str(
            "[model]\npath = \"m\"\n[data]\nformat = \"csv\"\n",
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("data.path"), "{e}");
    }

    #[test]
    fn custom_strategy_is_read_from_roles() {
        let c = Config::from_toml_str(
            &format!(
                "{MINIMAL}\n[strategy]\nname = \"custom\"\n[strategy.roles]\na = {{ train = true, share = false }}\nb = {{ train = true, share = true }}\nhead = {{ train = false, share = false }}\n"
            ),
            "t",
        )
        .unwrap();
        let s = c.strategy("t").unwrap();
        assert!(s.shares(Role::B) && !s.shares(Role::A) && !s.trains(Role::Head));
    }
}
