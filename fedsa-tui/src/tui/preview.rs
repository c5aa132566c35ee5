//! What the Clients screen shows before training: how the partitioner splits the data into
//! clients. Computed by an injected service (the binary uses fedsa-data), so the UI needs no data
//! code and tests need no files.

/// The partition of a config's data into clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientsPreview {
    /// Label names in id order; `train_hist[i]` counts label `i`.
    pub label_names: Vec<String>,
    /// One row per client, in client id order.
    pub clients: Vec<ClientPreviewRow>,
}

/// One client's share of the data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientPreviewRow {
    pub train: usize,
    pub test: usize,
    /// Training examples per label id.
    pub train_hist: Vec<usize>,
}

impl ClientsPreview {
    pub fn total_train(&self) -> usize {
        self.clients.iter().map(|c| c.train).sum()
    }

    pub fn total_test(&self) -> usize {
        self.clients.iter().map(|c| c.test).sum()
    }
}

/// Where the Clients screen stands: the preview follows the setup and is recomputed after an edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Preview {
    /// Not computed for the current setup yet.
    #[default]
    Stale,
    Ready(ClientsPreview),
    Failed(String),
}
