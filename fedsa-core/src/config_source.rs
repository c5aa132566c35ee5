//! Where a run config's values came from: the name errors give the config (its file, or the
//! flag that set a field), shared by the config and the error type without either importing
//! the other.

/// The source name of a config error raised by code that is handed a run config's values (one
/// section, one setting) but not the file they came from. Whoever loaded the config replaces
/// it with the file, or with the command-line flag that set the value
/// ([`crate::Error::name_config_source`]).
pub const UNNAMED_CONFIG: &str = "<run config>";

/// Where a run config's values came from, so that a problem found after loading (by the engine,
/// the data readers, the model code) names them: the config file, and the fields a front end
/// set otherwise, such as a command-line override. See [`crate::Error::name_config_source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    file: String,
    /// (field, how it was set), e.g. (`device`, `command line (--device)`).
    overrides: Vec<(String, String)>,
}

impl ConfigSource {
    /// Every value from the file (or other source) named `name`.
    pub fn file(name: impl Into<String>) -> Self {
        Self {
            file: name.into(),
            overrides: Vec::new(),
        }
    }

    /// Records that `field` (and any key under it) was set by `how` instead of the file.
    pub fn set_by(&mut self, field: impl Into<String>, how: impl Into<String>) {
        self.overrides.push((field.into(), how.into()));
    }

    /// The name of where `field`'s value came from.
    pub fn name_of(&self, field: &str) -> &str {
        let under = |f: &str| {
            field == f
                || field
                    .strip_prefix(f)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        };
        self.overrides
            .iter()
            .rev()
            .find(|(f, _)| under(f))
            .map_or(self.file.as_str(), |(_, how)| how.as_str())
    }
}

impl Default for ConfigSource {
    /// No source known: errors keep naming [`UNNAMED_CONFIG`].
    fn default() -> Self {
        Self::file(UNNAMED_CONFIG)
    }
}
