//! Federated strategies as data: for each role, whether it is trained and whether it goes up to
//! the server; how that changes from round to round; what the server computes from a module's
//! uploaded factors; whether clients carry a second, personal adapter; and whether the personal
//! tensors are relayed from client to client. Every built-in method is one row of this table,
//! not a code path of its own.

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

    /// Neither trained nor sent: a frozen tensor every client holds alike.
    pub const FROZEN: RolePolicy = RolePolicy::new(false, false);
    /// Trained and sent up for aggregation.
    pub const SHARED: RolePolicy = RolePolicy::new(true, true);
    /// Trained and kept on the client.
    pub const PERSONAL: RolePolicy = RolePolicy::new(true, false);
}

/// How the role policies change from round to round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// The same policies every round.
    #[default]
    Fixed,
    /// RoLoRA: `first` (A or B) trains and goes up in odd rounds, the other factor in even
    /// rounds; the factor not trained in a round is frozen and common to all clients, so the
    /// mean of the trained one is the exact mean of the products.
    Alternate { first: Role },
}

/// What the server computes from each low-rank module's factors after the tensor-wise
/// aggregate (see `fedsa_aggregators::methods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerRule {
    /// The aggregate is the new global state.
    #[default]
    Aggregate,
    /// FedEx-LoRA: the part of the clients' mean product the mean factors miss,
    /// `Σp_kB_kA_k − B̄Ā`, scaled and added to every client's frozen weight.
    ExactResidual,
    /// FedSVD: every `every` aggregations, `A` and `B` re-factorised from the SVD of `B̄·A` so
    /// that `A`'s rows are orthonormal and the product is unchanged.
    SvdRefresh { every: usize },
    /// FLoRA: the clients' factors stacked, so that the product is exactly `Σp_k s_k B_kA_k`,
    /// merged into every client's frozen weight; each client then starts afresh (A random,
    /// B zero). The server keeps no factors.
    MergeStacked,
    /// FlexLoRA: `ΔW = Σp_k s_k B_kA_k`; each client receives the truncated SVD of `ΔW` at
    /// its own rank.
    SvdTruncate,
    /// HetLoRA: the factors zero-padded to the largest rank and summed with weights
    /// proportional to `‖B_kA_k‖_F`; each client receives the first `r_k` components.
    NormPadded,
}

impl ServerRule {
    /// Whether the rule combines each module's factors itself, in place of the aggregator:
    /// then the clients' ranks may differ, and the aggregator sees only the other shared
    /// tensors (the head).
    pub fn aggregates_factors(self) -> bool {
        matches!(
            self,
            ServerRule::MergeStacked | ServerRule::SvdTruncate | ServerRule::NormPadded
        )
    }
}

/// A federated strategy: one policy per role, plus how it varies and what the server adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    pub name: String,
    pub a: RolePolicy,
    pub b: RolePolicy,
    pub head: RolePolicy,
    /// The personal adapter's factors (FedDPA), when the strategy gives clients one.
    #[serde(default = "personal_policy")]
    pub local: RolePolicy,
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub server: ServerRule,
    /// FedDPA: every adapted module carries a second, personal adapter next to the global one.
    #[serde(default)]
    pub personal_adapter: bool,
    /// The released FedSA code's `share_local_model: True`: the tensors a client keeps (B and
    /// the head) are handed from client to client in sampling order, and every client is
    /// evaluated with the last ones, as one shared model object does there.
    #[serde(default)]
    pub shared_model: bool,
}

fn personal_policy() -> RolePolicy {
    RolePolicy::PERSONAL
}

/// A built-in strategy: its name, what it is, and its row.
pub struct BuiltinStrategy {
    pub name: &'static str,
    /// One line for `fedsa --help`, the README and the TUI.
    pub summary: &'static str,
    pub build: fn() -> Strategy,
}

/// The built-in strategies, the paper's four first.
pub const BUILTINS: [BuiltinStrategy; 11] = [
    BuiltinStrategy {
        name: "fedsa",
        summary: "FedSA-LoRA: A shared, B and head kept on each client",
        build: Strategy::fedsa,
    },
    BuiltinStrategy {
        name: "fedit",
        summary: "FedIT: LoRA with FedAvg, everything shared",
        build: Strategy::fedit,
    },
    BuiltinStrategy {
        name: "ffa",
        summary: "FFA-LoRA: A frozen at a common init, B and head shared",
        build: Strategy::ffa,
    },
    BuiltinStrategy {
        name: "local",
        summary: "local training, nothing shared",
        build: Strategy::local,
    },
    BuiltinStrategy {
        name: "fedex",
        summary: "FedEx-LoRA: FedIT plus the residual that makes the aggregate exact",
        build: Strategy::fedex,
    },
    BuiltinStrategy {
        name: "rolora",
        summary: "RoLoRA: A and B trained and shared in alternate rounds",
        build: Strategy::rolora,
    },
    BuiltinStrategy {
        name: "fedsvd",
        summary: "FedSVD: B shared, A re-orthogonalised from the SVD of B·A",
        build: Strategy::fedsvd,
    },
    BuiltinStrategy {
        name: "feddpa",
        summary: "FedDPA: a global adapter shared, a local adapter kept, both in the forward",
        build: Strategy::feddpa,
    },
    BuiltinStrategy {
        name: "flora",
        summary: "FLoRA: clients of any rank; the stacked factors' exact sum merged into the base",
        build: Strategy::flora,
    },
    BuiltinStrategy {
        name: "flexlora",
        summary: "FlexLoRA: clients of any rank; each gets the SVD of the mean update at its rank",
        build: Strategy::flexlora,
    },
    BuiltinStrategy {
        name: "hetlora",
        summary: "HetLoRA: clients of any rank; zero-padded, norm-weighted, truncated per client",
        build: Strategy::hetlora,
    },
];

/// The built-in strategy names, in the order [`BUILTINS`] lists them.
pub const BUILTIN_STRATEGIES: [&str; 11] = {
    let mut names = [""; 11];
    let mut i = 0;
    while i < BUILTINS.len() {
        names[i] = BUILTINS[i].name;
        i += 1;
    }
    names
};

/// The name of a strategy whose roles the config spells out (`[strategy.roles]`).
pub const CUSTOM_STRATEGY: &str = "custom";

/// Every value `strategy.name` takes: the built-ins, then the custom one.
pub const STRATEGY_NAMES: [&str; 12] = {
    let mut names = [CUSTOM_STRATEGY; 12];
    let mut i = 0;
    while i < BUILTIN_STRATEGIES.len() {
        names[i] = BUILTIN_STRATEGIES[i];
        i += 1;
    }
    names
};

/// Which roles train and which go up in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundPlan {
    a: RolePolicy,
    b: RolePolicy,
    head: RolePolicy,
    local: RolePolicy,
}

impl RoundPlan {
    pub fn policy(&self, role: Role) -> RolePolicy {
        match role {
            Role::A => self.a,
            Role::B => self.b,
            Role::Head => self.head,
            Role::LocalA | Role::LocalB => self.local,
        }
    }

    pub fn trains(&self, role: Role) -> bool {
        self.policy(role).train
    }

    pub fn shares(&self, role: Role) -> bool {
        self.policy(role).share
    }

    /// The roles trained this round.
    pub fn trained_roles(&self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.trains(*r)).collect()
    }
}

impl Strategy {
    /// A strategy with fixed per-role policies and nothing else (the `custom` rows).
    pub fn from_roles(name: &str, a: RolePolicy, b: RolePolicy, head: RolePolicy) -> Self {
        Self {
            name: name.into(),
            a,
            b,
            head,
            local: RolePolicy::PERSONAL,
            schedule: Schedule::Fixed,
            server: ServerRule::Aggregate,
            personal_adapter: false,
            shared_model: false,
        }
    }

    /// FedSA: A is trained and aggregated; B and the head stay on the client.
    pub fn fedsa() -> Self {
        Self::from_roles(
            "fedsa",
            RolePolicy::SHARED,
            RolePolicy::PERSONAL,
            RolePolicy::PERSONAL,
        )
    }

    /// FedIT: plain LoRA with FedAvg; everything trained and shared.
    pub fn fedit() -> Self {
        Self::from_roles(
            "fedit",
            RolePolicy::SHARED,
            RolePolicy::SHARED,
            RolePolicy::SHARED,
        )
    }

    /// FFA-LoRA: A frozen at its common seeded init; B (and the head) trained and shared.
    pub fn ffa() -> Self {
        Self::from_roles(
            "ffa",
            RolePolicy::FROZEN,
            RolePolicy::SHARED,
            RolePolicy::SHARED,
        )
    }

    /// Local training: everything trained, nothing shared.
    pub fn local() -> Self {
        Self::from_roles(
            "local",
            RolePolicy::PERSONAL,
            RolePolicy::PERSONAL,
            RolePolicy::PERSONAL,
        )
    }

    /// FedEx-LoRA: FedIT's exchange, plus the residual `Σp_kB_kA_k − B̄Ā` the server adds to
    /// every client's frozen weights so that the global model is the mean of the clients'.
    pub fn fedex() -> Self {
        Self {
            server: ServerRule::ExactResidual,
            ..Self::from_roles(
                "fedex",
                RolePolicy::SHARED,
                RolePolicy::SHARED,
                RolePolicy::SHARED,
            )
        }
    }

    /// RoLoRA: A in odd rounds, B in even rounds (the head every round), each the only factor
    /// trained and sent in its round.
    pub fn rolora() -> Self {
        Self::rolora_from(Role::A)
    }

    /// RoLoRA starting with `first` (A or B).
    pub fn rolora_from(first: Role) -> Self {
        Self {
            schedule: Schedule::Alternate { first },
            ..Self::from_roles(
                "rolora",
                RolePolicy::SHARED,
                RolePolicy::SHARED,
                RolePolicy::SHARED,
            )
        }
    }

    /// FedSVD: A frozen (held by the server), B and the head shared; every round A and B are
    /// re-factorised from the SVD of `B̄·A`.
    pub fn fedsvd() -> Self {
        Self::fedsvd_every(1)
    }

    /// FedSVD refreshing every `every` aggregations.
    pub fn fedsvd_every(every: usize) -> Self {
        Self {
            server: ServerRule::SvdRefresh { every },
            ..Self::from_roles(
                "fedsvd",
                RolePolicy::FROZEN,
                RolePolicy::SHARED,
                RolePolicy::SHARED,
            )
        }
    }

    /// FedDPA: the global adapter (A, B) and the head are FedAvg'd; a second, local adapter on
    /// every module is trained and never leaves the client.
    pub fn feddpa() -> Self {
        Self {
            personal_adapter: true,
            ..Self::from_roles(
                "feddpa",
                RolePolicy::SHARED,
                RolePolicy::SHARED,
                RolePolicy::SHARED,
            )
        }
    }

    /// A strategy that shares A, B and the head and whose server `rule` combines each
    /// module's factors (the methods for clients of different ranks).
    fn factor_rule(name: &str, rule: ServerRule) -> Self {
        Self {
            server: rule,
            ..Self::from_roles(
                name,
                RolePolicy::SHARED,
                RolePolicy::SHARED,
                RolePolicy::SHARED,
            )
        }
    }

    /// FLoRA (Wang et al., NeurIPS 2024): the stacked factors' exact product merged into the
    /// base every round, the adapters re-initialised; the head is FedAvg'd.
    pub fn flora() -> Self {
        Self::factor_rule("flora", ServerRule::MergeStacked)
    }

    /// FlexLoRA (Bai et al., NeurIPS 2024): each client gets the SVD of the mean full-size
    /// update truncated to its own rank; the head is FedAvg'd.
    pub fn flexlora() -> Self {
        Self::factor_rule("flexlora", ServerRule::SvdTruncate)
    }

    /// HetLoRA (Cho et al., EMNLP 2024): zero-padding, norm-weighted sum, per-client
    /// truncation; the head is FedAvg'd.
    pub fn hetlora() -> Self {
        Self::factor_rule("hetlora", ServerRule::NormPadded)
    }

    /// A built-in strategy by name.
    pub fn builtin(name: &str) -> Result<Self> {
        BUILTINS
            .iter()
            .find(|b| b.name == name)
            .map(|b| (b.build)())
            .ok_or_else(|| {
                Error::run_config(
                    "strategy.name",
                    format!(
                        "unknown strategy `{name}` (built-in: {})",
                        BUILTIN_STRATEGIES.join(", ")
                    ),
                )
            })
    }

    /// The policy for `role` as configured (before the schedule applies).
    pub fn policy(&self, role: Role) -> RolePolicy {
        match role {
            Role::A => self.a,
            Role::B => self.b,
            Role::Head => self.head,
            Role::LocalA | Role::LocalB => self.local,
        }
    }

    /// What trains and what goes up in `round` (1-based).
    pub fn plan(&self, round: usize) -> RoundPlan {
        let mut plan = RoundPlan {
            a: self.a,
            b: self.b,
            head: self.head,
            local: self.local,
        };
        if let Schedule::Alternate { first } = self.schedule {
            let on = if round % 2 == 1 {
                first
            } else {
                other_factor(first)
            };
            let policy = |r: Role| {
                if r == on {
                    RolePolicy::SHARED
                } else {
                    RolePolicy::FROZEN
                }
            };
            plan.a = policy(Role::A);
            plan.b = policy(Role::B);
        }
        plan
    }

    /// Whether `role` is trained in some round.
    pub fn trains(&self, role: Role) -> bool {
        self.policy(role).train
    }

    /// Whether `role` goes up to the server in some round.
    pub fn shares(&self, role: Role) -> bool {
        self.policy(role).share
    }

    /// Whether the server holds `role` in its global state: it is shared, or the server rule
    /// rewrites it (FedSVD's A).
    pub fn server_holds(&self, role: Role) -> bool {
        if self.server == ServerRule::MergeStacked && matches!(role, Role::A | Role::B) {
            // FLoRA's server keeps the merged product (the base corrections), not factors.
            return false;
        }
        self.shares(role)
            || (matches!(self.server, ServerRule::SvdRefresh { .. }) && role == Role::A)
    }

    /// Whether clients re-initialise their factors whenever a merged update reaches them
    /// (FLoRA: the merged base already holds what the factors learned).
    pub fn restarts_factors(&self) -> bool {
        self.server == ServerRule::MergeStacked
    }

    /// Whether clients of different ranks can federate under this strategy: its server rule
    /// combines factors of any rank, or no factor ever leaves a client (local training, or a
    /// custom strategy that shares only the head).
    pub fn accepts_differing_ranks(&self) -> bool {
        self.server.aggregates_factors()
            || [Role::A, Role::B]
                .iter()
                .all(|r| !(self.server_holds(*r) || (self.shared_model && self.trains(*r))))
    }

    /// Whether anything at all crosses between client and server.
    pub fn shares_anything(&self) -> bool {
        Role::ALL.iter().any(|r| self.shares(*r))
    }

    /// Whether the server needs each module's A and B as factors of one product: such a
    /// strategy works only with adapters that are a plain low-rank update `s·B·A`.
    pub fn needs_low_rank_modules(&self) -> bool {
        !matches!(self.server, ServerRule::Aggregate) || self.personal_adapter
    }
}

fn other_factor(r: Role) -> Role {
    if r == Role::A { Role::B } else { Role::A }
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
            [Role::A, Role::B, Role::Head]
                .iter()
                .all(|r| fedit.shares(*r) && fedit.trains(*r))
        );
    }

    #[test]
    fn every_builtin_is_found_by_its_name() {
        for b in &BUILTINS {
            assert_eq!(Strategy::builtin(b.name).unwrap().name, b.name);
        }
        assert_eq!(STRATEGY_NAMES.last(), Some(&CUSTOM_STRATEGY));
    }

    #[test]
    fn rolora_alternates_the_factor_that_trains_and_goes_up() {
        let s = Strategy::rolora();
        for round in [1, 3, 5] {
            let p = s.plan(round);
            assert!(p.trains(Role::A) && p.shares(Role::A), "round {round}");
            assert!(!p.trains(Role::B) && !p.shares(Role::B), "round {round}");
            assert!(p.shares(Role::Head));
        }
        for round in [2, 4] {
            let p = s.plan(round);
            assert!(!p.trains(Role::A) && p.trains(Role::B) && p.shares(Role::B));
        }
        let from_b = Strategy::rolora_from(Role::B).plan(1);
        assert!(from_b.trains(Role::B) && !from_b.trains(Role::A));
    }

    #[test]
    fn fixed_strategies_plan_the_same_every_round() {
        let s = Strategy::fedsa();
        assert_eq!(s.plan(1), s.plan(7));
        assert_eq!(
            s.plan(2).trained_roles(),
            vec![Role::A, Role::B, Role::Head, Role::LocalA, Role::LocalB]
        );
    }

    #[test]
    fn fedsvd_server_holds_the_frozen_a() {
        let s = Strategy::fedsvd();
        assert!(!s.trains(Role::A) && !s.shares(Role::A) && s.server_holds(Role::A));
        assert!(!Strategy::ffa().server_holds(Role::A));
    }

    #[test]
    fn the_heterogeneous_rank_methods_combine_factors_on_the_server() {
        for s in [Strategy::flora(), Strategy::flexlora(), Strategy::hetlora()] {
            assert!(
                s.server.aggregates_factors() && s.needs_low_rank_modules(),
                "{}",
                s.name
            );
            assert!(s.shares(Role::A) && s.shares(Role::B) && s.server_holds(Role::Head));
        }
        let flora = Strategy::flora();
        assert!(!flora.server_holds(Role::A) && !flora.server_holds(Role::B));
        assert!(flora.restarts_factors() && !Strategy::flexlora().restarts_factors());
        assert!(Strategy::flexlora().server_holds(Role::B));
        assert!(!Strategy::fedex().server.aggregates_factors());
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
