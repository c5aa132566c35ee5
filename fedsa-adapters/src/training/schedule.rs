//! The learning-rate schedule over the whole run (all rounds' local steps), as
//! `transformers`' `get_{constant,linear}_schedule_with_warmup`.

use fedsa_core::config::ScheduleKind;

/// The factor on the base learning rate for optimizer step `step` (0-based) of `total`.
pub fn lr_factor(kind: ScheduleKind, warmup: usize, total: usize, step: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    match kind {
        ScheduleKind::Constant => 1.0,
        ScheduleKind::Linear => {
            let left = total.saturating_sub(step) as f64;
            let span = total.saturating_sub(warmup).max(1) as f64;
            (left / span).max(0.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay_to_zero() {
        let f = |s| lr_factor(ScheduleKind::Linear, 2, 10, s);
        assert_eq!(
            [f(0), f(1), f(2), f(6), f(10), f(12)],
            [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
        );
        assert_eq!(lr_factor(ScheduleKind::Constant, 0, 10, 9), 1.0);
        assert_eq!(lr_factor(ScheduleKind::Constant, 4, 10, 1), 0.25);
    }
}
