//! Per-client settings (`[clients]`) as the Clients screen shows and edits them: each client's
//! rank, local steps and batch size, the cursor over them, and the rules that keep the saved
//! lists clean. A list is written only once a client differs from the run-wide value, follows
//! `federation.num_clients`, and goes back to unset once every client has the run-wide value.

use fedsa_core::{ClientsConfig, Config};

use super::app::App;
use super::preview::Preview;

/// A client count beyond which no list is materialised or extended: one entry per client of a
/// mistyped count (say 10^12) would exhaust memory. A list left at its length then fails
/// validation with an error naming it, as any wrong list does.
pub(crate) const MAX_LISTED_CLIENTS: usize = 1 << 16;

/// A per-client setting, in column order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientField {
    #[default]
    Rank,
    Steps,
    Batch,
}

impl ClientField {
    pub const ALL: [ClientField; 3] = [Self::Rank, Self::Steps, Self::Batch];

    /// The column header: a run that trains local epochs counts epochs, not steps.
    pub fn title(self, config: &Config) -> &'static str {
        match self {
            Self::Rank => "Rank",
            Self::Steps if epochs(config).is_some() => "Epochs",
            Self::Steps => "Steps",
            Self::Batch => "Batch",
        }
    }

    /// Whether editing it means anything: local steps are ignored while the run trains
    /// `training.local_epochs`, which is one value for every client.
    pub fn editable(self, config: &Config) -> bool {
        self != Self::Steps || epochs(config).is_none()
    }

    /// The run-wide value, which a client takes while its list is unset.
    pub fn default_value(self, config: &Config) -> usize {
        match self {
            Self::Rank => config.adapter.rank,
            Self::Steps => config.training.local_steps,
            Self::Batch => config.training.batch_size,
        }
    }

    /// Client `k`'s value, as its trainer gets it (the core's fallback rules).
    pub fn value(self, config: &Config, k: usize) -> usize {
        match self {
            Self::Rank => config.client_adapter(k).rank,
            Self::Steps => config.client_training(k).local_steps,
            Self::Batch => config.client_training(k).batch_size,
        }
    }

    /// What client `k`'s cell shows: its epochs when the run counts epochs.
    pub fn shown(self, config: &Config, k: usize) -> usize {
        match (self, epochs(config)) {
            (Self::Steps, Some(e)) => e,
            _ => self.value(config, k),
        }
    }

    /// Whether client `k` has a value of its own, which the screen marks.
    pub fn differs(self, config: &Config, k: usize) -> bool {
        self.editable(config) && self.value(config, k) != self.default_value(config)
    }

    fn list(self, clients: &ClientsConfig) -> Option<&Vec<usize>> {
        match self {
            Self::Rank => clients.rank.as_ref(),
            Self::Steps => clients.local_steps.as_ref(),
            Self::Batch => clients.batch_size.as_ref(),
        }
    }

    fn list_mut(self, clients: &mut ClientsConfig) -> &mut Option<Vec<usize>> {
        match self {
            Self::Rank => &mut clients.rank,
            Self::Steps => &mut clients.local_steps,
            Self::Batch => &mut clients.batch_size,
        }
    }
}

fn epochs(config: &Config) -> Option<usize> {
    config.training.local_epochs
}

/// The Clients screen's cursor: a client row and one of its settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCursor {
    pub row: usize,
    pub field: ClientField,
}

impl ClientCursor {
    /// The setting the cursor is on under `config`: off a column that cannot be edited there
    /// (steps, once the run trains epochs), so keys and drawing agree on the cell.
    pub fn field_in(&self, config: &Config) -> ClientField {
        if self.field.editable(config) {
            self.field
        } else {
            ClientField::Rank
        }
    }

    /// Moves to the next (`delta > 0`) or previous editable setting, stopping at either end.
    pub fn move_field(&mut self, delta: isize, config: &Config) {
        let columns: Vec<ClientField> = ClientField::ALL
            .into_iter()
            .filter(|f| f.editable(config))
            .collect();
        let at = columns
            .iter()
            .position(|f| *f == self.field_in(config))
            .unwrap_or(0);
        let to = at
            .saturating_add_signed(delta.signum())
            .min(columns.len() - 1);
        self.field = columns[to];
    }
}

/// How many client rows the screen has: the partition's, or, until it is computed, one per
/// configured client (so the settings stay editable while the preview fails).
pub(crate) fn client_rows(app: &App) -> usize {
    match &app.preview {
        Preview::Ready(p) => p.clients.len(),
        _ => app.form.assembled().federation.num_clients,
    }
}

/// Fits the lists to `federation.num_clients` for the config the form assembles: fewer clients
/// drop the last entries, more take the run-wide value, and a list that then holds only
/// run-wide values is unset, so a saved config says only what differs. The form keeps its own
/// lists as they were, so a count lowered and raised again gives the clients their values back.
pub(crate) fn fit(config: &mut Config) {
    let n = config.federation.num_clients;
    for field in ClientField::ALL {
        let default = field.default_value(config);
        let list = field.list_mut(&mut config.clients);
        let Some(values) = list else { continue };
        if values.len() < n && n > MAX_LISTED_CLIENTS {
            continue;
        }
        values.resize(n, default);
        if values.iter().all(|v| *v == default) {
            *list = None;
        }
    }
}

/// The form's lists with client `k`'s `field` set to `value` (at least 1). `config` is the
/// assembled config the run-wide values come from; the first edit of a list writes it out for
/// every client, and a list of only run-wide values is unset again. Entries past the client
/// count are kept (see [`fit`]). Beyond [`MAX_LISTED_CLIENTS`] clients nothing changes.
pub(crate) fn with_value(
    lists: &ClientsConfig,
    config: &Config,
    field: ClientField,
    k: usize,
    value: usize,
) -> ClientsConfig {
    let n = config.federation.num_clients;
    if n > MAX_LISTED_CLIENTS {
        return lists.clone();
    }
    let default = field.default_value(config);
    let mut values = field
        .list(lists)
        .cloned()
        .unwrap_or_else(|| vec![default; n]);
    if values.len() < n {
        values.resize(n, default);
    }
    if let Some(v) = values.get_mut(k) {
        *v = value.max(1);
    }
    let mut out = lists.clone();
    *field.list_mut(&mut out) = if values.iter().all(|v| *v == default) {
        None
    } else {
        Some(values)
    };
    out
}

/// A change to the selected client's selected setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edit {
    Raise,
    Lower,
    /// Back to the run-wide value.
    Reset,
}

/// Applies `change` at the cursor to the form's lists; refusals go to the footer.
pub(crate) fn edit(app: &mut App, change: Edit) {
    let config = app.form.assembled();
    let n = config.federation.num_clients;
    let k = app
        .clients_cursor
        .row
        .min(client_rows(app).saturating_sub(1));
    if k >= n {
        // The partition shown is older than the client count (its rows go past it).
        app.error(format!(
            "client {k} is not in the setup ({n} clients): u recomputes the partition"
        ));
        return;
    }
    if n > MAX_LISTED_CLIENTS {
        app.error(format!(
            "per-client values need at most {MAX_LISTED_CLIENTS} clients, the setup has {n}"
        ));
        return;
    }
    let field = app.clients_cursor.field_in(&config);
    let current = field.value(&config, k);
    let value = match change {
        Edit::Raise => current.saturating_add(1),
        Edit::Lower => current.saturating_sub(1).max(1),
        Edit::Reset => field.default_value(&config),
    };
    let lists = with_value(app.form.clients(), &config, field, k, value);
    app.form.set_clients(lists);
}
