//! The lines the Flower server prints as its run goes (the ServerApp's output, which
//! `flwr run --stream` and `fedsa flower` show): the same round line as `fedsa run`.

use fedsa_core::Event;
use fedsa_engine::round_line::round_line;

/// The line for `event`, if it has one; `rounds` is the run's last round.
pub fn line(event: &Event, rounds: &mut usize) -> Option<String> {
    match event {
        Event::RunStarted {
            num_clients,
            rounds: last,
            first_round,
            strategy,
            aggregator,
        } => {
            *rounds = *last;
            Some(format!(
                "fedsa on Flower: {num_clients} clients, rounds {first_round}..={last}, strategy \
                 {strategy}, aggregator {aggregator}"
            ))
        }
        Event::ClientFailed {
            round,
            client,
            error,
        } => Some(format!("round {round}: client {client} failed: {error}")),
        Event::RoundFinished { record, .. } => Some(round_line(record, *rounds)),
        Event::Log { message } => Some(message.clone()),
        Event::RunFailed { error } => Some(format!("run failed: {error}")),
        Event::RunFinished { summary } => Some(format!(
            "finished: {} rounds, mean accuracy {}, best {}, {:.1}s",
            summary.rounds,
            pct(summary.mean_accuracy),
            pct(summary.best_mean_accuracy),
            summary.seconds
        )),
        Event::RoundStarted { .. }
        | Event::ClientStarted { .. }
        | Event::ClientFinished { .. }
        | Event::CheckpointWritten { .. } => None,
    }
}

fn pct(v: Option<f64>) -> String {
    fedsa_engine::units::percent_or_dash(v, 2)
}
