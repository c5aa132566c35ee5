//! What a partition looks like: per client, the train and test sizes and label histograms.
//! Printed as a table by the CLI, saved as `partition.json` in the run folder, drawn by the TUI.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{ClientSplit, Dataset};

/// Sizes and label histograms of every client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionReport {
    pub label_names: Vec<String>,
    pub clients: Vec<ClientReport>,
}

/// One client's sizes and label histograms (counts in label id order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientReport {
    pub train: usize,
    pub test: usize,
    pub train_hist: Vec<usize>,
    pub test_hist: Vec<usize>,
}

impl PartitionReport {
    pub fn new(dataset: &Dataset, splits: &[ClientSplit]) -> Self {
        let hist = |indices: &[usize]| {
            let mut h = vec![0; dataset.num_labels()];
            for &i in indices {
                if let Some(c) = dataset
                    .examples
                    .get(i)
                    .and_then(|e| h.get_mut(e.label as usize))
                {
                    *c += 1;
                }
            }
            h
        };
        Self {
            label_names: dataset.label_names.clone(),
            clients: splits
                .iter()
                .map(|s| ClientReport {
                    train: s.train.len(),
                    test: s.test.len(),
                    train_hist: hist(&s.train),
                    test_hist: hist(&s.test),
                })
                .collect(),
        }
    }

    /// Mean over clients of [`ClientReport::label_entropy`].
    pub fn mean_label_entropy(&self) -> f64 {
        mean(self.clients.iter().map(ClientReport::label_entropy))
    }

    /// Mean over clients of [`ClientReport::max_label_share`].
    pub fn mean_max_label_share(&self) -> f64 {
        mean(self.clients.iter().map(ClientReport::max_label_share))
    }
}

impl ClientReport {
    /// Examples per label, train and test together.
    pub fn hist(&self) -> Vec<usize> {
        self.train_hist
            .iter()
            .zip(&self.test_hist)
            .map(|(a, b)| a + b)
            .collect()
    }

    pub fn total(&self) -> usize {
        self.train + self.test
    }

    /// Shannon entropy (bits) of the client's label mix: log2(labels) when balanced, 0 when the
    /// client holds one label only.
    pub fn label_entropy(&self) -> f64 {
        let total = self.total() as f64;
        if total == 0.0 {
            return 0.0;
        }
        self.hist()
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total;
                -p * p.log2()
            })
            .sum()
    }

    /// The share of the client's most frequent label (1 when it holds one label only).
    pub fn max_label_share(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        self.hist().into_iter().max().unwrap_or(0) as f64 / total as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// A table: one row per client, then the total; each label column shows count and share.
impl fmt::Display for PartitionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cell = |count: usize, total: usize| {
            let pct = if total == 0 {
                0.0
            } else {
                100.0 * count as f64 / total as f64
            };
            format!("{count} ({pct:.1}%)")
        };
        let mut header = vec!["client".to_string(), "train".into(), "test".into()];
        header.extend(self.label_names.iter().cloned());
        let mut rows: Vec<Vec<String>> = Vec::with_capacity(self.clients.len() + 1);
        let mut total = ClientReport {
            train: 0,
            test: 0,
            train_hist: vec![0; self.label_names.len()],
            test_hist: vec![0; self.label_names.len()],
        };
        for (k, c) in self.clients.iter().enumerate() {
            let mut row = vec![k.to_string(), c.train.to_string(), c.test.to_string()];
            row.extend(c.hist().into_iter().map(|n| cell(n, c.total())));
            rows.push(row);
            total.train += c.train;
            total.test += c.test;
            for (t, n) in total.train_hist.iter_mut().zip(&c.train_hist) {
                *t += n;
            }
            for (t, n) in total.test_hist.iter_mut().zip(&c.test_hist) {
                *t += n;
            }
        }
        let mut row = vec![
            "total".to_string(),
            total.train.to_string(),
            total.test.to_string(),
        ];
        row.extend(total.hist().into_iter().map(|n| cell(n, total.total())));
        rows.push(row);
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                rows.iter()
                    .chain(std::iter::once(&header))
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            // The first column is left-aligned, the numbers right-aligned.
            let out: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (s, w))| {
                    if c == 0 {
                        format!("{s:<w$}")
                    } else {
                        format!("{s:>w$}")
                    }
                })
                .collect();
            writeln!(f, "{}", out.join("  ").trim_end())
        };
        line(f, &header)?;
        for r in &rows {
            line(f, r)?;
        }
        Ok(())
    }
}
