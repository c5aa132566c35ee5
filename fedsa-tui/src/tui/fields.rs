//! The Setup form's fields: which config keys it shows, with labels, help and choices, and the
//! conversion between each key's value in a `Config` and the text the user edits.

use std::path::PathBuf;

use fedsa_core::Config;

/// One editable field: `key` is the dotted config path that validation errors name.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub key: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    /// Values that ←/→ cycle through; any text can still be typed.
    pub choices: &'static [&'static str],
}

const fn field(
    key: &'static str,
    label: &'static str,
    help: &'static str,
    choices: &'static [&'static str],
) -> FieldSpec {
    FieldSpec {
        key,
        label,
        help,
        choices,
    }
}

/// The fields in screen order.
pub const FIELDS: &[FieldSpec] = &[
    field(
        "name",
        "Run name",
        "names the run folder under the output folder",
        &[],
    ),
    field(
        "output_dir",
        "Output folder",
        "where run folders are written",
        &[],
    ),
    field(
        "model.path",
        "Model folder",
        "Hugging Face folder: config.json, model.safetensors, tokenizer.json",
        &[],
    ),
    field(
        "data.format",
        "Dataset format",
        "how the data file is read",
        &fedsa_core::config::DataFormat::NAMES,
    ),
    field(
        "data.path",
        "Dataset path",
        "the data file (for glue: the task folder)",
        &[],
    ),
    field(
        "data.max_examples",
        "Max examples",
        "use at most this many examples; empty: all",
        &[],
    ),
    field(
        "partition.kind",
        "Partitioner",
        "how examples are split into clients",
        &fedsa_core::config::PartitionKind::NAMES,
    ),
    field(
        "partition.alpha",
        "Dirichlet alpha",
        "label skew: small is skewed, large is near IID",
        &[],
    ),
    field(
        "partition.key",
        "Partition key",
        "column grouping examples for `key` (e.g. movie_name)",
        &[],
    ),
    field(
        "federation.num_clients",
        "Clients",
        "number of simulated clients",
        &[],
    ),
    field(
        "federation.clients_per_round",
        "Clients per round",
        "clients sampled to train each round",
        &[],
    ),
    field("federation.rounds", "Rounds", "communication rounds", &[]),
    field(
        "training.local_steps",
        "Local steps",
        "optimizer steps per client per round",
        &[],
    ),
    field(
        "adapter.kind",
        "Adapter",
        "lora, rslora, vera, or a plugin adapter's name",
        &fedsa_adapters::BUILTIN_KINDS,
    ),
    field("adapter.rank", "Rank", "adapter rank r", &[]),
    field(
        "adapter.alpha",
        "LoRA alpha",
        "scale s = alpha/r (rsLoRA: alpha/sqrt r)",
        &[],
    ),
    field(
        "adapter.target_modules",
        "Target modules",
        "comma-separated linear layers to adapt",
        &[],
    ),
    field(
        "strategy.name",
        "Strategy",
        "fedsa A; fedit all; ffa B (A frozen); local none; fedex rolora fedsvd feddpa",
        &fedsa_core::STRATEGY_NAMES,
    ),
    field(
        "strategy.aggregator",
        "Aggregator",
        "how the server combines shared tensors",
        &fedsa_aggregators::BUILTIN_AGGREGATORS,
    ),
    field(
        "plugins",
        "Plugins",
        "comma-separated plugin libraries to load",
        &[],
    ),
    field(
        "training.lr",
        "Learning rate",
        "local optimizer learning rate",
        &[],
    ),
    field(
        "seed",
        "Seed",
        "seeds sampling, partitioning and initialisation",
        &[],
    ),
    field("device", "Device", DEVICE_HELP, DEVICES),
];

#[cfg(feature = "cuda")]
const DEVICES: &[&str] = &["cpu", "cuda:0", "cuda:1"];
#[cfg(not(feature = "cuda"))]
const DEVICES: &[&str] = &["cpu"];
#[cfg(feature = "cuda")]
const DEVICE_HELP: &str = "cpu or cuda:N";
#[cfg(not(feature = "cuda"))]
const DEVICE_HELP: &str = "cpu (cuda:N needs a build with --features cuda)";

/// Validation errors that name a key the form does not show, mapped to the field that decides it.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("strategy.roles", "strategy.name"),
    ("training.local_epochs", "training.local_steps"),
];

pub(crate) fn index_of(key: &str) -> Option<usize> {
    FIELDS.iter().position(|f| f.key == key)
}

fn path_text(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn list_text<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_items(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A serde enum's snake_case name (the same text the TOML file holds).
fn enum_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn enum_parse<T: serde::de::DeserializeOwned>(text: &str, choices: &[&str]) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("`{text}` is not one of {}", choices.join(", ")))
}

fn whole(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a whole number"))
}

fn number(text: &str) -> Result<f64, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn required(text: &str) -> Result<&str, String> {
    if text.is_empty() {
        Err("required".into())
    } else {
        Ok(text)
    }
}

fn optional(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

/// The text a field shows for `config`.
pub(crate) fn read(c: &Config, key: &str) -> String {
    match key {
        "name" => c.name.clone(),
        "output_dir" => path_text(&c.output_dir),
        "model.path" => path_text(&c.model.path),
        "data.format" => enum_text(&c.data.format),
        "data.path" => path_text(&c.data.path),
        "data.max_examples" => c
            .data
            .max_examples
            .map(|n| n.to_string())
            .unwrap_or_default(),
        "partition.kind" => enum_text(&c.partition.kind),
        "partition.alpha" => c.partition.alpha.to_string(),
        "partition.key" => c.partition.key.clone().unwrap_or_default(),
        "federation.num_clients" => c.federation.num_clients.to_string(),
        "federation.clients_per_round" => c.federation.clients_per_round.to_string(),
        "federation.rounds" => c.federation.rounds.to_string(),
        "training.local_steps" => c.training.local_steps.to_string(),
        "adapter.kind" => c.adapter.kind.clone(),
        "adapter.rank" => c.adapter.rank.to_string(),
        "adapter.alpha" => c.adapter.alpha.to_string(),
        "adapter.target_modules" => list_text(&c.adapter.target_modules),
        "strategy.name" => c.strategy.name.clone(),
        "strategy.aggregator" => c.strategy.aggregator.clone(),
        "plugins" => list_text(c.plugins.iter().map(|p| path_text(p))),
        "training.lr" => c.training.lr.to_string(),
        "seed" => c.seed.to_string(),
        "device" => c.device.clone(),
        _ => String::new(),
    }
}

/// Writes a field's text into `c`; the error says why the text is not a value of the field.
pub(crate) fn write(c: &mut Config, key: &str, text: &str) -> Result<(), String> {
    let choices = FIELDS
        .iter()
        .find(|f| f.key == key)
        .map_or(&[][..], |f| f.choices);
    match key {
        "name" => c.name = text.to_string(),
        "output_dir" => c.output_dir = PathBuf::from(required(text)?),
        "model.path" => c.model.path = PathBuf::from(required(text)?),
        "data.format" => c.data.format = enum_parse(text, choices)?,
        "data.path" => c.data.path = PathBuf::from(required(text)?),
        "data.max_examples" => {
            c.data.max_examples = optional(text).map(whole).transpose()?;
        }
        "partition.kind" => c.partition.kind = enum_parse(text, choices)?,
        "partition.alpha" => c.partition.alpha = number(text)?,
        "partition.key" => c.partition.key = optional(text).map(str::to_string),
        "federation.num_clients" => c.federation.num_clients = whole(text)?,
        "federation.clients_per_round" => c.federation.clients_per_round = whole(text)?,
        "federation.rounds" => c.federation.rounds = whole(text)?,
        "training.local_steps" => c.training.local_steps = whole(text)?,
        "adapter.kind" => c.adapter.kind = text.to_string(),
        "adapter.rank" => c.adapter.rank = whole(text)?,
        "adapter.alpha" => c.adapter.alpha = number(text)?,
        "adapter.target_modules" => c.adapter.target_modules = list_items(text).collect(),
        "strategy.name" => {
            c.strategy.name = text.to_string();
            // Roles belong to `custom` only; dropping them otherwise lets a loaded custom config
            // switch to a built-in strategy (and back: `c` is a fresh copy of the loaded one).
            if text != "custom" {
                c.strategy.roles = None;
            }
        }
        "strategy.aggregator" => c.strategy.aggregator = text.to_string(),
        "plugins" => c.plugins = list_items(text).map(PathBuf::from).collect(),
        "training.lr" => c.training.lr = number(text)?,
        "seed" => {
            c.seed = text
                .parse()
                .map_err(|_| format!("`{text}` is not a whole number"))?;
        }
        "device" => c.device = text.to_string(),
        _ => {}
    }
    Ok(())
}
