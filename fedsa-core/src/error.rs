//! The one error type of the fedsa libraries. Every variant names what was wrong and where
//! (file, field, line, tensor) so a user can fix the input without reading code.

use std::path::PathBuf;

use crate::config_source::{ConfigSource, UNNAMED_CONFIG};

/// Result alias used across the fedsa libraries.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in fedsa's libraries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is missing, malformed or inconsistent.
    #[error("config {source_name}: {field}: {message}")]
    Config {
        source_name: String,
        field: String,
        message: String,
    },

    /// Reading or writing a file failed. The OS message is part of the text and deliberately
    /// not returned by `source()` as well: a chain printer (anyhow's `{:#}`, [`chain_text`])
    /// would otherwise print it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A data file is malformed; `line` is 1-based, 0 when the problem is the whole file.
    #[error("{}:{line}: {message}", file.display())]
    Data {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// A model file (weights, config, tokenizer) is missing or does not fit.
    #[error("{}: {message}", file.display())]
    Model { file: PathBuf, message: String },

    /// A parameter set is inconsistent: wrong shape, missing tensor, length mismatch.
    #[error("parameter `{name}`: {message}")]
    Param { name: String, message: String },

    /// A client failed during local training or evaluation.
    #[error("client {client}: {message}")]
    Client { client: usize, message: String },

    /// The aggregator could not combine the round's updates.
    #[error("aggregator `{aggregator}`: {message}")]
    Aggregation { aggregator: String, message: String },

    /// A plugin could not be loaded or misbehaved.
    #[error("plugin {}: {message}", path.display())]
    Plugin { path: PathBuf, message: String },

    /// An error from the tensor backend or another library, with what fedsa was doing.
    #[error("{context}: {message}")]
    Backend { context: String, message: String },

    /// A failure in a layer above the libraries (the engine's run folder, a front end), kept
    /// whole: its causes stay reachable through `source()` rather than being flattened into text.
    #[error("{context}")]
    External {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The run was asked to stop.
    #[error("stopped by request")]
    Stopped,
}

impl Error {
    /// A configuration error for `field` in the config named `source_name`.
    pub fn config(
        source_name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Config {
            source_name: source_name.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A configuration error about `field` (a dotted path) of the run config, raised where the
    /// file it came from is not known; see [`UNNAMED_CONFIG`].
    pub fn run_config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::config(UNNAMED_CONFIG, field, message)
    }

    /// Names where the value of a run-config error raised without a source
    /// ([`Error::run_config`]) came from: the config file, or the flag that set its field.
    /// Every other error, config errors that already name a file included, is left as it is.
    pub fn name_config_source(&mut self, source: &ConfigSource) {
        if let Self::Config {
            source_name, field, ..
        } = self
            && source_name == UNNAMED_CONFIG
        {
            *source_name = source.name_of(field).to_string();
        }
    }

    /// [`Error::name_config_source`] by value, for `map_err`.
    #[must_use]
    pub fn with_config_source(mut self, source: &ConfigSource) -> Self {
        self.name_config_source(source);
        self
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error,
        }
    }

    /// A data error at `file:line`.
    pub fn data(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Self::Data {
            file: file.into(),
            line,
            message: message.into(),
        }
    }

    /// A model-file error.
    pub fn model(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Model {
            file: file.into(),
            message: message.into(),
        }
    }

    /// A parameter error for tensor `name`.
    pub fn param(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Param {
            name: name.into(),
            message: message.into(),
        }
    }

    /// An error from above the libraries, with what fedsa was doing; the cause is kept as the
    /// source.
    pub fn external(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::External {
            context: context.into(),
            source: source.into(),
        }
    }

    /// A backend error with what fedsa was doing at the time.
    pub fn backend(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Backend {
            context: context.into(),
            message: err.to_string(),
        }
    }
}

/// `error` and its chain of causes as one line, `outer: inner: innermost`, for events and logs
/// that carry text. A cause whose text the outer message already ends with is not repeated.
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_errors_keep_their_cause_and_print_it_once() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let e = Error::external("writing metrics", Error::io("runs/x/metrics.jsonl", io));
        assert_eq!(e.to_string(), "writing metrics");
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.to_string().contains("metrics.jsonl"));
        assert_eq!(
            chain_text(&e),
            "writing metrics: runs/x/metrics.jsonl: disk full"
        );
    }

    #[test]
    fn unnamed_config_errors_get_the_file_or_the_flag_that_set_the_field() {
        let mut source = ConfigSource::file("examples/quickstart.toml");
        source.set_by("device", "command line (--device)");
        let e = Error::run_config("data.glue_task", "unknown").with_config_source(&source);
        assert_eq!(
            e.to_string(),
            "config examples/quickstart.toml: data.glue_task: unknown"
        );
        let e = Error::run_config("device", "no CUDA").with_config_source(&source);
        assert_eq!(
            e.to_string(),
            "config command line (--device): device: no CUDA"
        );
        // A config error that names its own file (an adapter spec) keeps it.
        let e = Error::config("spec.json", "params[0].shape", "bad").with_config_source(&source);
        assert_eq!(e.to_string(), "config spec.json: params[0].shape: bad");
        let e = Error::run_config("model.path", "missing");
        assert_eq!(
            e.to_string(),
            format!("config {UNNAMED_CONFIG}: model.path: missing")
        );
    }

    /// Every link of a chain, printed the way anyhow's `{:#}` does (each link's text, joined by
    /// `: `), with no de-duplication: the shape of the binary's `error: {e:#}`.
    fn every_link(error: &(dyn std::error::Error + 'static)) -> String {
        let mut parts = vec![error.to_string()];
        let mut cause = error.source();
        while let Some(c) = cause {
            parts.push(c.to_string());
            cause = c.source();
        }
        parts.join(": ")
    }

    #[test]
    fn no_variant_prints_its_cause_twice_in_a_chain() {
        let not_found = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let os_message = not_found().to_string();
        let io = Error::io("cfg/run.toml", not_found());
        assert_eq!(every_link(&io), format!("cfg/run.toml: {os_message}"));
        assert_eq!(chain_text(&io), every_link(&io));
        let external = Error::external("writing a checkpoint", Error::io("ck", not_found()));
        assert_eq!(
            every_link(&external),
            format!("writing a checkpoint: ck: {os_message}")
        );
        assert_eq!(chain_text(&external), every_link(&external));
        for e in [
            Error::config("c.toml", "a.b", "bad"),
            Error::data("d.csv", 3, "bad"),
            Error::model("m/config.json", "bad"),
            Error::param("w", "bad"),
            Error::backend("loading", "bad"),
            Error::Stopped,
        ] {
            assert!(std::error::Error::source(&e).is_none(), "{e}");
        }
    }
}
