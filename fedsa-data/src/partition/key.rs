//! Partition by key: examples sharing a key (a movie, an author) always go to the same client,
//! which gives the natural non-IID split of the data's own groups. Keys are dealt largest group
//! first to the client with the fewest examples so far, which keeps client sizes close; ties
//! between equal groups are broken by a seeded shuffle.

use std::collections::BTreeMap;

use fedsa_core::{Error, Result, SeededRng};

use crate::Dataset;

pub(super) fn assign(
    dataset: &Dataset,
    key_column: Option<&str>,
    num_clients: usize,
    rng: &mut SeededRng,
) -> Result<Vec<Vec<usize>>> {
    let column = key_column.unwrap_or("the key column");
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in dataset.examples.iter().enumerate() {
        let Some(key) = e.key.as_deref() else {
            return Err(Error::run_config(
                "partition.key",
                format!(
                    "example {i} of {} has no `{column}` value: load the data with partition.key set",
                    dataset.source.display()
                ),
            ));
        };
        groups.entry(key).or_default().push(i);
    }
    if groups.len() < num_clients {
        return Err(Error::run_config(
            "partition.key",
            format!(
                "`{column}` has {} distinct values but there are {num_clients} clients: every client needs at least one",
                groups.len()
            ),
        ));
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    rng.shuffle(&mut groups);
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut clients: Vec<Vec<usize>> = vec![Vec::new(); num_clients];
    for group in groups {
        // The first of the least-loaded clients; an empty client always wins a tie, so every
        // client gets a key.
        let k = (0..num_clients)
            .min_by_key(|&k| clients[k].len())
            .unwrap_or(0);
        clients[k].extend(group);
    }
    for c in &mut clients {
        c.sort_unstable();
    }
    Ok(clients)
}
