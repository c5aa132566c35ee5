//! What a trainable parameter is for. Strategies decide per role whether it trains and whether
//! it is shared, so the federation never needs to know which adapter produced a tensor.

use serde::{Deserialize, Serialize};

/// The part a parameter plays in the federated adapter.
///
/// LoRA and rsLoRA tag `lora_A` as [`Role::A`] and `lora_B` as [`Role::B`]; VeRA's `d` vector
/// plays A's part and `b` plays B's; the classification head is [`Role::Head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The input-side factor: what the paper finds all clients share.
    A,
    /// The output-side factor: what is particular to each client.
    B,
    /// The task head (classifier); personal under FedSA.
    Head,
    /// The input-side factor of a client's second, personal adapter (FedDPA's local adapter).
    LocalA,
    /// The output-side factor of the personal adapter.
    LocalB,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 5] = [Role::A, Role::B, Role::Head, Role::LocalA, Role::LocalB];

    /// The lowercase name used in configs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::A => "a",
            Role::B => "b",
            Role::Head => "head",
            Role::LocalA => "local_a",
            Role::LocalB => "local_b",
        }
    }

    /// Parses a role name as written in configs and specs (`a`, `b`, `head`; case-insensitive).
    pub fn parse(name: &str) -> Option<Role> {
        match name.to_ascii_lowercase().as_str() {
            "a" => Some(Role::A),
            "b" => Some(Role::B),
            "head" => Some(Role::Head),
            "local_a" => Some(Role::LocalA),
            "local_b" => Some(Role::LocalB),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
