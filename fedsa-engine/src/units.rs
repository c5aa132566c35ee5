//! Units every front end prints the same way.

/// Bytes as B, KiB, MiB or GiB (binary prefixes, one decimal above a KiB).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A fraction as a percentage with `decimals` decimals (`0.8123`, 1 → `81.2`), no sign.
pub fn percent(fraction: f64, decimals: usize) -> String {
    format!("{:.decimals$}", fraction * 100.0)
}

/// [`percent`] of an optional fraction, `-` when absent.
pub fn percent_or_dash(fraction: Option<f64>, decimals: usize) -> String {
    fraction.map_or_else(|| "-".into(), |v| percent(v, decimals))
}

/// The privacy a run has spent: `ε 4.21 (δ 1e-5)`; `ε inf` when no finite bound holds.
pub fn epsilon_text(spent: &fedsa_core::PrivacySpent) -> String {
    format!("ε {:.2} (δ {:e})", spent.epsilon, spent.delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsilon_is_shown_with_its_delta() {
        let spent = |epsilon| fedsa_core::PrivacySpent {
            epsilon,
            delta: 1e-5,
            releases: 8,
        };
        assert_eq!(epsilon_text(&spent(16.512_875)), "ε 16.51 (δ 1e-5)");
        assert_eq!(epsilon_text(&spent(f64::INFINITY)), "ε inf (δ 1e-5)");
    }

    #[test]
    fn bytes_take_the_largest_binary_unit_below_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(442_368), "432.0 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
        assert_eq!(human_bytes(5 << 40), "5120.0 GiB");
    }

    #[test]
    fn percentages_round_to_the_asked_decimals() {
        assert_eq!(percent(0.8123, 1), "81.2");
        assert_eq!(percent(0.86634, 2), "86.63");
        assert_eq!(percent_or_dash(None, 2), "-");
    }
}
