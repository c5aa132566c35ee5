//! The Setup screen's form: the run's editable fields as text. Edits are written back into a copy
//! of the loaded `Config` and checked with `Config::validate`, so each error shows next to the
//! field it names; keys the form does not show are kept as loaded. The per-client lists
//! (`[clients]`) are edited on the Clients screen and kept here too, so saving and launching
//! take them along.

use fedsa_core::config::parse_cuda_ordinal;
use fedsa_core::{ClientsConfig, Config};

use super::client_edits::fit;
use super::fields::{ALIASES, FIELDS, FieldSpec, index_of, read, write};

/// The form's state: texts, the edit in progress and the current validation result.
#[derive(Debug, Clone)]
pub struct Form {
    base: Config,
    source_name: String,
    values: Vec<String>,
    errors: Vec<Option<String>>,
    /// A validation error about a key the form does not show.
    general: Option<String>,
    selected: usize,
    editing: Option<String>,
    modified: bool,
}

impl Form {
    /// A form showing `config`; `source_name` (the config file) goes into error messages.
    pub fn new(config: Config, source_name: impl Into<String>) -> Self {
        let values = FIELDS.iter().map(|f| read(&config, f.key)).collect();
        let mut form = Self {
            base: config,
            source_name: source_name.into(),
            values,
            errors: vec![None; FIELDS.len()],
            general: None,
            selected: 0,
            editing: None,
            modified: false,
        };
        form.revalidate();
        form
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn value(&self, i: usize) -> &str {
        self.values.get(i).map_or("", String::as_str)
    }

    /// The value of the field with `key`, if the form has one.
    pub fn value_of(&self, key: &str) -> Option<&str> {
        index_of(key).map(|i| self.value(i))
    }

    pub fn error(&self, i: usize) -> Option<&str> {
        self.errors.get(i).and_then(|e| e.as_deref())
    }

    pub fn general_error(&self) -> Option<&str> {
        self.general.as_deref()
    }

    pub fn error_count(&self) -> usize {
        self.errors.iter().flatten().count() + usize::from(self.general.is_some())
    }

    pub fn is_valid(&self) -> bool {
        self.error_count() == 0
    }

    /// Whether the form differs from what was loaded or last saved.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    pub fn mark_saved(&mut self) {
        self.modified = false;
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn spec(&self) -> &'static FieldSpec {
        &FIELDS[self.selected.min(FIELDS.len() - 1)]
    }

    /// Moves the selection by `delta`, clamped to the fields.
    pub fn move_selection(&mut self, delta: isize) {
        let last = self.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    pub fn select(&mut self, i: usize) {
        self.selected = i.min(self.len().saturating_sub(1));
    }

    /// The text being typed into the selected field, if an edit is in progress.
    pub fn editing(&self) -> Option<&str> {
        self.editing.as_deref()
    }

    pub fn begin_edit(&mut self) {
        self.editing = Some(self.value(self.selected).to_string());
    }

    pub fn edit_push(&mut self, c: char) {
        if let Some(text) = &mut self.editing {
            text.push(c);
        }
    }

    pub fn edit_pop(&mut self) {
        if let Some(text) = &mut self.editing {
            text.pop();
        }
    }

    pub fn edit_clear(&mut self) {
        if let Some(text) = &mut self.editing {
            text.clear();
        }
    }

    pub fn cancel_edit(&mut self) {
        self.editing = None;
    }

    /// Ends the edit, keeping the typed text; returns whether the value changed.
    pub fn commit_edit(&mut self) -> bool {
        match self.editing.take() {
            Some(text) => self.set_value(self.selected, text.trim()),
            None => false,
        }
    }

    /// Steps the selected field through its choices; returns whether the value changed.
    pub fn cycle(&mut self, delta: isize) -> bool {
        let choices = self.spec().choices;
        if choices.is_empty() {
            return false;
        }
        let n = choices.len() as isize;
        let next = match choices.iter().position(|c| *c == self.value(self.selected)) {
            Some(at) => (at as isize + delta).rem_euclid(n),
            None if delta < 0 => n - 1,
            None => 0,
        };
        self.set_value(self.selected, choices[next as usize])
    }

    /// Sets field `i`'s text and revalidates; returns whether it changed.
    pub fn set_value(&mut self, i: usize, text: &str) -> bool {
        let Some(value) = self.values.get_mut(i) else {
            return false;
        };
        if value == text {
            return false;
        }
        text.clone_into(value);
        self.modified = true;
        self.revalidate();
        true
    }

    /// The per-client lists as the form keeps them: they may be longer than the client count
    /// (see `client_edits::fit`); `assembled` fits them.
    pub fn clients(&self) -> &ClientsConfig {
        &self.base.clients
    }

    /// Replaces the per-client lists and revalidates; returns whether they changed.
    pub fn set_clients(&mut self, clients: ClientsConfig) -> bool {
        if self.base.clients == clients {
            return false;
        }
        self.base.clients = clients;
        self.modified = true;
        self.revalidate();
        true
    }

    /// The config the form describes, without validation: fields that do not parse keep their
    /// loaded value. For summaries that should show something even while a field is wrong.
    pub fn assembled(&self) -> Config {
        self.written(|_, _| {})
    }

    /// The loaded config with every field's text written in (`on_error` hears the fields that
    /// do not parse) and the per-client lists fitted to the client count.
    fn written(&self, mut on_error: impl FnMut(usize, String)) -> Config {
        let mut config = self.base.clone();
        for (i, (spec, value)) in FIELDS.iter().zip(&self.values).enumerate() {
            if let Err(e) = write(&mut config, spec.key, value) {
                on_error(i, e);
            }
        }
        fit(&mut config);
        config
    }

    /// The validated config, or the first error as text.
    pub fn config(&self) -> Result<Config, String> {
        if let Some((i, e)) = self
            .errors
            .iter()
            .enumerate()
            .find_map(|(i, e)| e.as_ref().map(|e| (i, e)))
        {
            return Err(format!("{}: {e}", FIELDS[i].key));
        }
        if let Some(e) = &self.general {
            return Err(e.clone());
        }
        Ok(self.assembled())
    }

    fn revalidate(&mut self) {
        let mut errors = vec![None; FIELDS.len()];
        let config = self.written(|i, e| errors[i] = Some(e));
        self.errors = errors;
        self.general = None;
        if let Err(e) = config.validate(&self.source_name) {
            match e {
                fedsa_core::Error::Config { field, message, .. } => {
                    let key = ALIASES
                        .iter()
                        .find(|(from, _)| *from == field)
                        .map_or(field.as_str(), |(_, to)| to);
                    match index_of(key) {
                        // A field that does not parse already shows why; the config still holds
                        // its old value, so an error about it would be stale.
                        Some(i) if self.errors[i].is_some() => {}
                        Some(i) => self.errors[i] = Some(message),
                        None => self.general = Some(format!("{field}: {message}")),
                    }
                }
                other => self.general = Some(other.to_string()),
            }
        }
        if parse_cuda_ordinal(&config.device).is_some()
            && !cfg!(feature = "cuda")
            && let Some(i) = index_of("device")
        {
            self.errors[i].get_or_insert_with(|| {
                "this build has no CUDA: rebuild with --features cuda, or use cpu".into()
            });
        }
    }
}
