//! Federated strategies as data: for each role, whether it is trained and whether it is shared.
//! FedSA, FedIT, FFA-LoRA and local training are four rows of this table, not four code paths.

use serde::{Deserialize, Serialize};

use crate::{Error, Result, Role};

/// Whether a role is trained locally and whether the server aggregates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    pub train: bool,
    pub share: bool,
}

impl RolePolicy {
    pub const fn new(train: bool, share: bool) -> Self {
        Self { train, share }
    }
}

/// A federated strategy: one policy per role, plus the aggregator that combines shared roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    pub name: String,
    pub a: RolePolicy,
    pub b: RolePolicy,
    pub head: RolePolicy,
}

/// The built-in strategy names, in the order the paper presents them.
pub const BUILTIN_STRATEGIES: [&str; 4] = ["fedsa", "fedit", "ffa", "local"];

/// The name of a strategy whose roles the config spells out (`[strategy.roles]`).
pub const CUSTOM_STRATEGY: &str = "custom";

/// Every value `strategy.name` takes: the built-ins, then the custom one.
pub const STRATEGY_NAMES: [&str; 5] = {
    let mut names = [CUSTOM_STRATEGY; 5];
    let mut i = 0;
    while i < BUILTIN_STRATEGIES.len() {
        names[i] = BUILTIN_STRATEGIES[i];
        i += 1;
    }
    names
};

impl Strategy {
    /// FedSA: A is trained and aggregated; B and the head stay on the client.
    pub fn fedsa() -> Self {
        Self {
            name: "fedsa".into(),
            a: RolePolicy::new(true, true),
            b: RolePolicy::new(true, false),
            head: RolePolicy::new(true, false),
        }
    }

    /// FedIT: plain LoRA with FedAvg; everything trained and shared.
    pub fn fedit() -> Self {
        Self {
            name: "fedit".into(),
            a: RolePolicy::new(true, true),
            b: RolePolicy::new(true, true),
            head: RolePolicy::new(true, true),
        }
    }

    /// FFA-LoRA: A frozen at its common seeded init; B (and the head) trained and shared.
    pub fn ffa() -> Self {
        Self {
            name: "ffa".into(),
            a: RolePolicy::new(false, false),
            b: RolePolicy::new(true, true),
            head: RolePolicy::new(true, true),
        }
    }

    /// Local training: everything trained, nothing shared.
    pub fn local() -> Self {
        Self {
            name: "local".into(),
            a: RolePolicy::new(true, false),
            b: RolePolicy::new(true, false),
            head: RolePolicy::new(true, false),
        }
    }

    /// A built-in strategy by name.
    pub fn builtin(name: &str) -> Result<Self> {
        match name {
            "fedsa" => Ok(Self::fedsa()),
            "fedit" => Ok(Self::fedit()),
            "ffa" => Ok(Self::ffa()),
            "local" => Ok(Self::local()),
            other => Err(Error::run_config(
                "strategy.name",
                format!(
                    "unknown strategy `{other}` (built-in: {})",
                    BUILTIN_STRATEGIES.join(", ")
                ),
            )),
        }
    }

    /// The policy for `role`.
    pub fn policy(&self, role: Role) -> RolePolicy {
        match role {
            Role::A => self.a,
            Role::B => self.b,
            Role::Head => self.head,
        }
    }

    /// Whether `role` is trained locally.
    pub fn trains(&self, role: Role) -> bool {
        self.policy(role).train
    }

    /// Whether `role` is sent to the server and aggregated.
    pub fn shares(&self, role: Role) -> bool {
        self.policy(role).share
    }

    /// Whether anything at all crosses between client and server.
    pub fn shares_anything(&self) -> bool {
        Role::ALL.iter().any(|r| self.shares(*r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_the_papers_rows() {
        let fedsa = Strategy::builtin("fedsa").unwrap();
        assert!(fedsa.shares(Role::A) && !fedsa.shares(Role::B) && !fedsa.shares(Role::Head));
        let ffa = Strategy::builtin("ffa").unwrap();
        assert!(!ffa.trains(Role::A) && ffa.trains(Role::B) && ffa.shares(Role::B));
        assert!(!Strategy::builtin("local").unwrap().shares_anything());
        let fedit = Strategy::builtin("fedit").unwrap();
        assert!(
            Role::ALL
                .iter()
                .all(|r| fedit.shares(*r) && fedit.trains(*r))
        );
    }

    #[test]
    fn unknown_strategy_names_the_field() {
        let err = Strategy::builtin("fedx").unwrap_err().to_string();
        assert!(
            err.contains("strategy.name") && err.contains("fedx"),
            "{err}"
        );
    }
}
