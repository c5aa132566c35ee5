//! The built-in aggregators against hand-computed numbers, their options, and FedAdam's state.

mod common;

use common::{federation, max_diff, run, set, updates};
use fedsa_aggregators::{
    FedAdam, FedAdamSettings, Median, PluginRegistry, TrimmedMean, build_aggregator,
};
use fedsa_core::{Aggregator, Error};

fn only(agg: &mut dyn Aggregator, values: &[&[f32]], examples: &[usize]) -> Vec<f32> {
    let ups = updates(values, examples);
    let global = set(&vec![0.0; values[0].len()]);
    agg.aggregate(1, &global, &ups, &[])
        .unwrap()
        .unwrap()
        .get("w")
        .unwrap()
        .data()
        .to_vec()
}

#[test]
fn median_odd_and_even_counts() {
    // Columns: {1,5,3} -> 3, {-2,0,9} -> 0. Weights must not matter.
    let out = only(
        &mut Median,
        &[&[1.0, -2.0], &[5.0, 0.0], &[3.0, 9.0]],
        &[1, 1000, 1],
    );
    assert_eq!(out, [3.0, 0.0]);
    // Even: {1,2,4,10} -> (2+4)/2 = 3.
    let out = only(
        &mut Median,
        &[&[10.0], &[1.0], &[4.0], &[2.0]],
        &[1, 1, 1, 1],
    );
    assert_eq!(out, [3.0]);
}

#[test]
fn trimmed_mean_drops_floor_trim_n_per_side() {
    // n = 5, trim 0.2 -> k = 1 per side.
    // Column 0: {1,2,3,4,100} -> mean(2,3,4) = 3. Column 1: {-5,0,1,1,2} -> mean(0,1,1) = 2/3.
    let mut agg = TrimmedMean::new(0.2).unwrap();
    let out = only(
        &mut agg,
        &[
            &[100.0, 1.0],
            &[1.0, -5.0],
            &[3.0, 2.0],
            &[2.0, 0.0],
            &[4.0, 1.0],
        ],
        &[1, 50, 1, 1, 1],
    );
    assert_eq!(out[0], 3.0);
    assert!((out[1] - 2.0 / 3.0).abs() < 1e-7, "{}", out[1]);
    // trim 0.1 with n = 5 -> k = 0: the plain (unweighted) mean, 110/5 = 22.
    let mut agg = TrimmedMean::new(0.1).unwrap();
    let out = only(
        &mut agg,
        &[&[100.0], &[1.0], &[3.0], &[2.0], &[4.0]],
        &[9, 1, 1, 1, 1],
    );
    assert_eq!(out, [22.0]);
    assert!(TrimmedMean::new(0.5).is_err());
}

#[test]
fn fedadam_one_step_by_hand() {
    // global 0; clients 1 (1 example) and 3 (3 examples): mean = 2.5, delta = 2.5.
    // m = 0.1*2.5 = 0.25; v = 0.01*6.25 = 0.0625, sqrt 0.25;
    // x' = 0 + 0.1 * 0.25 / (0.25 + 0.05) = 0.083333...
    let settings = FedAdamSettings {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.99,
        tau: 0.05,
    };
    let mut agg = FedAdam::new(settings);
    let out = only(&mut agg, &[&[1.0], &[3.0]], &[1, 3]);
    assert!((out[0] - 0.1 * 0.25 / 0.3).abs() < 1e-7, "{}", out[0]);
    let state = agg.state().unwrap();
    assert!((state.get("m/w").unwrap().data()[0] - 0.25).abs() < 1e-7);
    assert!((state.get("v/w").unwrap().data()[0] - 0.0625).abs() < 1e-7);

    // A second step from the new global (0.0833), same clients: the moments carry over.
    // delta = 2.5 - x1; m = 0.9*0.25 + 0.1*delta; v = 0.99*0.0625 + 0.01*delta^2.
    let x1 = f64::from(out[0]);
    let delta = 2.5 - x1;
    let m = 0.9 * 0.25 + 0.1 * delta;
    let v = 0.99 * 0.0625 + 0.01 * delta * delta;
    let expected = x1 + 0.1 * m / (v.sqrt() + 0.05);
    let ups = updates(&[&[1.0], &[3.0]], &[1, 3]);
    let out2 = agg
        .aggregate(2, &set(&[out[0]]), &ups, &[])
        .unwrap()
        .unwrap();
    let got = f64::from(out2.get("w").unwrap().data()[0]);
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
}

#[test]
fn fedadam_state_round_trips_and_bad_state_is_refused() {
    let mut a = FedAdam::new(FedAdamSettings::default());
    only(&mut a, &[&[1.0, 2.0], &[3.0, -1.0]], &[1, 1]);
    let state = a.state().unwrap();
    assert_eq!(state.len(), 2);
    let mut b = FedAdam::new(FedAdamSettings::default());
    b.load_state(&state).unwrap();
    assert_eq!(b.state().unwrap(), state);
    // Restored moments give the same next step as the original.
    let ups = updates(&[&[0.5, 0.5], &[1.5, 0.0]], &[2, 1]);
    let g = set(&[0.1, 0.2]);
    assert_eq!(
        a.aggregate(2, &g, &ups, &[]).unwrap(),
        b.aggregate(2, &g, &ups, &[]).unwrap()
    );

    let mut orphan = state.clone();
    orphan.remove("m/w");
    let e = b.load_state(&orphan).unwrap_err().to_string();
    assert!(e.contains("`v/w` without its first moment"), "{e}");
    let mut foreign = state;
    foreign.insert("x", vec![1], vec![0.0]).unwrap();
    let e = b.load_state(&foreign).unwrap_err().to_string();
    assert!(e.contains("holds `x`"), "{e}");
}

#[test]
fn build_aggregator_reads_options_and_names_bad_keys() {
    let none = PluginRegistry::new();
    for name in fedsa_aggregators::BUILTIN_AGGREGATORS {
        assert_eq!(build_aggregator(name, "", &none).unwrap().name(), name);
    }
    let e = build_aggregator("trimmed_mean", "trim = 0.7", &none)
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::Config { field, .. } if field == "strategy.aggregator_options.trim")
    );
    assert!(
        e.to_string().contains("must be in [0, 0.5), got 0.7"),
        "{e}"
    );

    let e = build_aggregator("fedadam", "lr = 0.1\nbeat1 = 0.8", &none)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("strategy.aggregator_options.beat1: unknown option for `fedadam` (known: lr, beta1, beta2, tau)"),
        "{e}"
    );
    let e = build_aggregator("fedavg", "trim = 0.1", &none)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("known: none"), "{e}");
    let e = build_aggregator("fedadam", "tau = \"small\"", &none)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("strategy.aggregator_options.tau: expected a number"),
        "{e}"
    );
}

#[test]
fn unknown_aggregator_lists_what_exists() {
    let e = build_aggregator("krum", "", &PluginRegistry::new())
        .err()
        .unwrap();
    let text = e.to_string();
    assert!(matches!(&e, Error::Config { field, .. } if field == "strategy.aggregator"));
    assert!(
        text.contains("unknown aggregator `krum`; built-in: fedavg, median, trimmed_mean, fedadam; plugins: none loaded"),
        "{text}"
    );
}

#[test]
fn robust_rules_run_a_federation_and_differ_from_fedavg() {
    let none = PluginRegistry::new();
    let mut globals = Vec::new();
    for name in ["fedavg", "median", "trimmed_mean", "fedadam"] {
        let mut fed = federation(build_aggregator(name, "", &none).unwrap(), 3);
        let summary = run(&mut fed).unwrap();
        assert_eq!(summary.rounds, 3, "{name}");
        globals.push((name, fed.global().clone()));
    }
    for (name, g) in &globals[1..] {
        assert!(max_diff(&globals[0].1, g) > 1e-3, "{name} equals fedavg");
    }
}
