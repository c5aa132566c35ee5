//! A node's state folder: the client's private state (B, head, optimiser moments, RNG
//! position, the frozen-weight corrections it received) after each round it took part in,
//! one safetensors file per round, each written atomically. It never leaves the node.
//!
//! A resumed server continues from its last checkpoint, which may be older than the node's
//! latest round; so besides the latest state the folder keeps, for the last two checkpoint
//! rounds of the config, the newest state at or before each.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use fedsa_core::ParamSet;
use fedsa_core::io::{params_from_safetensors, params_to_safetensors, write_atomic};

const PREFIX: &str = "round-";
const SUFFIX: &str = ".safetensors";
/// Checkpoint rounds whose state is kept, as the server keeps its checkpoints.
const KEEP_CHECKPOINTS: usize = 2;

/// An existing, writable folder of one node's states.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens the folder; it must exist (a node's private state is not put just anywhere) and be
    /// writable.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            bail!(
                "the node's state folder {} does not exist or is not a folder (node config \
                 `state-dir`); create it, empty, for a new node",
                path.display()
            );
        }
        let probe = path.join(".write-probe");
        fs::write(&probe, b"")
            .and_then(|()| fs::remove_file(&probe))
            .with_context(|| {
                format!(
                    "the node's state folder {} cannot be written (node config `state-dir`)",
                    path.display()
                )
            })?;
        Ok(Self {
            root: path.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The rounds with a saved state, in order.
    pub fn rounds(&self) -> Result<Vec<usize>> {
        let entries =
            fs::read_dir(&self.root).with_context(|| format!("reading {}", self.root.display()))?;
        let mut rounds = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(r) = name
                .strip_prefix(PREFIX)
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<usize>().ok())
            {
                rounds.push(r);
            }
        }
        rounds.sort_unstable();
        Ok(rounds)
    }

    fn path(&self, round: usize) -> PathBuf {
        self.root.join(format!("{PREFIX}{round}{SUFFIX}"))
    }

    /// The newest state at or before `at_most` (any round when `None`), with its round.
    pub fn latest(&self, at_most: Option<usize>) -> Result<Option<(usize, ParamSet)>> {
        let round = self
            .rounds()?
            .into_iter()
            .rev()
            .find(|&r| at_most.is_none_or(|m| r <= m));
        let Some(round) = round else { return Ok(None) };
        let path = self.path(round);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let state = params_from_safetensors(&bytes, &path)
            .with_context(|| format!("{} is not a readable node state", path.display()))?;
        Ok(Some((round, state)))
    }

    /// Saves the state after `round` (atomically), then drops states no resume can need, given
    /// the config's checkpoint rounds (`is_checkpoint`).
    pub fn save(
        &self,
        round: usize,
        state: &ParamSet,
        is_checkpoint: impl Fn(usize) -> bool,
    ) -> Result<()> {
        write_atomic(&self.path(round), &params_to_safetensors(state)?)?;
        let rounds = self.rounds()?;
        let mut keep = vec![round];
        let checkpoints: Vec<usize> = (1..=round)
            .rev()
            .filter(|&r| is_checkpoint(r))
            .take(KEEP_CHECKPOINTS)
            .collect();
        for c in checkpoints {
            if let Some(&r) = rounds.iter().rev().find(|&&r| r <= c) {
                keep.push(r);
            }
        }
        for r in rounds.into_iter().filter(|r| !keep.contains(r)) {
            let path = self.path(r);
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }

    /// Forgets every state (a new run starts from the seeded init).
    pub fn clear(&self) -> Result<()> {
        for r in self.rounds()? {
            let path = self.path(r);
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(v: f32) -> ParamSet {
        let mut p = ParamSet::new();
        p.insert("w", vec![1], vec![v]).unwrap();
        p
    }

    #[test]
    fn keeps_the_latest_and_what_the_last_two_checkpoints_need() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        let every_4 = |r: usize| r.is_multiple_of(4);
        for r in [1, 2, 3, 5, 6, 7, 9, 10] {
            s.save(r, &state(r as f32), every_4).unwrap();
        }
        // Checkpoints 8 and 4 need rounds 7 and 3 (the node took no part in 4 and 8).
        assert_eq!(s.rounds().unwrap(), vec![3, 7, 10]);
        let (r, p) = s.latest(Some(8)).unwrap().unwrap();
        assert_eq!((r, p.get("w").unwrap().data()[0]), (7, 7.0));
        assert_eq!(s.latest(None).unwrap().unwrap().0, 10);
        assert!(s.latest(Some(2)).unwrap().is_none());
        s.clear().unwrap();
        assert!(s.latest(None).unwrap().is_none());
    }

    #[test]
    fn a_missing_folder_or_a_corrupt_state_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = StateDir::open(&missing).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("state-dir"), "{e}");
        let s = StateDir::open(dir.path()).unwrap();
        fs::write(dir.path().join("round-4.safetensors"), b"garbage").unwrap();
        let e = format!("{:#}", s.latest(None).unwrap_err());
        assert!(e.contains("round-4.safetensors"), "{e}");
    }
}
