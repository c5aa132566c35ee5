//! What the model is trained to do: classify (an encoder with a classifier head, the default)
//! or generate (a causal language model trained on response tokens, evaluated by exact match).

use serde::{Deserialize, Serialize};

/// The `[task]` table of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    #[serde(default)]
    pub kind: TaskKind,
    /// Generation: tokens generated per test prompt when measuring exact match.
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    #[default]
    Classification,
    Generation,
}

impl TaskKind {
    pub fn is_generation(self) -> bool {
        self == TaskKind::Generation
    }

    /// What the headline "accuracy" figure measures under this task.
    pub fn accuracy_name(self) -> &'static str {
        match self {
            TaskKind::Classification => "accuracy",
            TaskKind::Generation => "exact match",
        }
    }
}

fn default_max_new_tokens() -> usize {
    32
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            kind: TaskKind::default(),
            max_new_tokens: default_max_new_tokens(),
        }
    }
}
