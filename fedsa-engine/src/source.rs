//! Naming where a config came from in the errors found after loading it. The libraries check
//! values they are handed without knowing the file (they raise
//! [`fedsa_core::Error::run_config`]); the engine's callers know it, and say so with a
//! [`ConfigSource`].

use fedsa_core::ConfigSource;

/// `err` with the run-config error it holds, if any, naming `source`.
pub fn name_config_source(mut err: anyhow::Error, source: &ConfigSource) -> anyhow::Error {
    // anyhow's downcast reaches the library error under any `.context(..)` layered on it.
    if let Some(e) = err.downcast_mut::<fedsa_core::Error>() {
        e.name_config_source(source);
    }
    err
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn a_run_config_error_under_context_names_the_file() {
        let err: fedsa_core::Result<()> = Err(fedsa_core::Error::run_config(
            "data.glue_task",
            "unknown task",
        ));
        let err = err.context("loading the data").unwrap_err();
        let named = name_config_source(err, &ConfigSource::file("q.toml"));
        assert_eq!(
            format!("{named:#}"),
            "loading the data: config q.toml: data.glue_task: unknown task"
        );
        let other = name_config_source(
            anyhow::anyhow!("not a config error"),
            &ConfigSource::file("q.toml"),
        );
        assert_eq!(other.to_string(), "not a config error");
    }
}
