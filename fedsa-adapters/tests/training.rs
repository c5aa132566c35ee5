//! The local trainer: loss goes down for every adapter, frozen roles do not move, exchanged
//! names and shapes, exact resume from a saved state, evaluation.

mod common;

use fedsa_adapters::{AdapterSpec, LocalTrainer};
use fedsa_core::config::{OptimizerKind, ScheduleKind, TrainingConfig};
use fedsa_core::{ClientTrainer, Role, RolePolicy, Strategy};

fn trainer(kind: &str, training: &TrainingConfig, dropout: f64, client: usize) -> LocalTrainer {
    let base = common::base(&common::tiny_bert());
    let mut cfg = common::adapter(kind);
    cfg.dropout = dropout;
    if kind == "vera" {
        // VeRA trains only vectors over frozen random projections: it needs a larger rank and
        // more layers to move a tiny random model within a few steps.
        cfg.rank = 16;
        cfg.target_modules = vec!["query".into(), "key".into(), "value".into(), "dense".into()];
    }
    let spec = AdapterSpec::builtin(kind, &cfg).unwrap();
    let data = common::examples(8, 1);
    LocalTrainer::new(
        client,
        base,
        &spec,
        &cfg,
        training,
        2,
        data.clone(),
        data,
        5,
        3,
    )
    .unwrap()
}

/// Classifier weights of order 1 (instead of N(0, 0.02²)), so that a frozen head passes on what
/// the adapter changes and a few steps show.
fn amplify_head(t: &mut LocalTrainer) {
    let names = vec!["classifier.weight".to_string()];
    let mut p = t.params(&names).unwrap();
    for v in p.get_mut("classifier.weight").unwrap().data_mut() {
        *v *= 50.0;
    }
    t.set_params(&p).unwrap();
}

/// Only the adapter trains: a falling loss must come from the adapter, not from the head.
fn adapters_only() -> Strategy {
    Strategy::from_roles(
        "adapters-only",
        RolePolicy::new(true, true),
        RolePolicy::new(true, false),
        RolePolicy::new(false, false),
    )
}

#[test]
fn a_few_steps_on_a_fixed_batch_lower_the_loss_for_every_variant() {
    for (kind, lr) in [("lora", 1e-2), ("rslora", 1e-2), ("vera", 1e-1)] {
        let mut training = common::training();
        training.lr = lr;
        let mut t = trainer(kind, &training, 0.0, 0);
        t.configure(&adapters_only()).unwrap();
        amplify_head(&mut t);
        let before = t.evaluate().unwrap().loss;
        for round in 0..12 {
            t.train(round).unwrap();
        }
        let after = t.evaluate().unwrap().loss;
        println!("{kind}: loss {before} -> {after}");
        assert!(after < before - 0.02, "{kind}: loss {before} -> {after}");
    }
}

#[test]
fn sgd_with_momentum_and_a_linear_schedule_train_too() {
    let training = TrainingConfig {
        optimizer: OptimizerKind::Sgd,
        momentum: 0.9,
        lr: 5.0,
        schedule: ScheduleKind::Linear,
        warmup_steps: 1,
        local_steps: 3,
        ..common::training()
    };
    let mut t = trainer("lora", &training, 0.0, 0);
    t.configure(&adapters_only()).unwrap();
    amplify_head(&mut t);
    let before = t.evaluate().unwrap().loss;
    let stats = t.train(0).unwrap();
    assert_eq!((stats.steps, stats.examples_seen), (3, 24));
    t.train(1).unwrap();
    t.train(2).unwrap();
    let after = t.evaluate().unwrap().loss;
    assert!(after < before - 0.02, "loss {before} -> {after}");
}

#[test]
fn roles_the_strategy_freezes_do_not_change() {
    let mut t = trainer("lora", &common::training(), 0.0, 0);
    t.configure(&Strategy::ffa()).unwrap();
    let roles = t.roles();
    let a_names: Vec<String> = roles
        .iter()
        .filter(|(_, r)| **r == Role::A)
        .map(|(n, _)| n.clone())
        .collect();
    let b_names: Vec<String> = roles
        .iter()
        .filter(|(_, r)| **r == Role::B)
        .map(|(n, _)| n.clone())
        .collect();
    let a0 = t.params(&a_names).unwrap();
    let b0 = t.params(&b_names).unwrap();
    for r in 0..3 {
        t.train(r).unwrap();
    }
    assert_eq!(t.params(&a_names).unwrap(), a0);
    assert_ne!(t.params(&b_names).unwrap(), b0);
}

#[test]
fn exchanged_names_and_roles_follow_peft() {
    let t = trainer("lora", &common::training(), 0.0, 0);
    let roles = t.roles();
    assert_eq!(
        roles["encoder.layer.1.attention.self.value.lora_A.weight"],
        Role::A
    );
    assert_eq!(
        roles["encoder.layer.1.attention.self.value.lora_B.weight"],
        Role::B
    );
    assert_eq!(roles["pooler.dense.weight"], Role::Head);
    assert_eq!(roles["classifier.bias"], Role::Head);
    assert_eq!(roles.len(), 2 * 2 * 2 + 4);
    let p = t
        .params(&["encoder.layer.0.attention.self.query.lora_A.weight".into()])
        .unwrap();
    assert_eq!(p.iter().next().unwrap().1.shape(), [4, 32]);
    let err = t.params(&["nope".into()]).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn set_params_checks_shapes_and_overwrites() {
    let mut t = trainer("vera", &common::training(), 0.0, 0);
    let name = "encoder.layer.0.attention.self.query.vera_lambda_d".to_string();
    let mut p = t.params(std::slice::from_ref(&name)).unwrap();
    p.get_mut(&name).unwrap().data_mut().fill(0.7);
    t.set_params(&p).unwrap();
    assert!(
        t.params(std::slice::from_ref(&name))
            .unwrap()
            .require(&name)
            .unwrap()
            .data()
            .iter()
            .all(|v| *v == 0.7)
    );
    let mut bad = fedsa_core::ParamSet::new();
    bad.insert(name.clone(), vec![3], vec![0.0; 3]).unwrap();
    let err = t.set_params(&bad).unwrap_err().to_string();
    assert!(err.contains(&name) && err.contains("shape"), "{err}");
}

#[test]
fn saved_state_resumes_exactly_with_dropout() {
    let training = TrainingConfig {
        local_steps: 2,
        batch_size: 4,
        ..common::training()
    };
    let mut one = trainer("lora", &training, 0.2, 1);
    one.configure(&Strategy::fedsa()).unwrap();
    one.train(0).unwrap();
    let state = one.save_state().unwrap();
    assert!(state.contains("__optimizer.step") && state.contains("__rng.dropout"));
    let mut two = trainer("lora", &training, 0.2, 1);
    two.configure(&Strategy::fedsa()).unwrap();
    two.load_state(&state).unwrap();
    let s1 = one.train(1).unwrap();
    let s2 = two.train(1).unwrap();
    assert_eq!(s1, s2);
    assert_eq!(one.save_state().unwrap(), two.save_state().unwrap());
    // A different client draws different batches and masks.
    let mut other = trainer("lora", &training, 0.2, 2);
    other.configure(&Strategy::fedsa()).unwrap();
    other.load_state(&state).unwrap();
    let mut three = trainer("lora", &training, 0.2, 1);
    three.configure(&Strategy::fedsa()).unwrap();
    three.load_state(&state).unwrap();
    assert_eq!(
        three.train(1).unwrap(),
        s1,
        "state, not client id, drives a resumed client"
    );
}

#[test]
fn evaluation_and_probabilities_are_consistent() {
    let mut t = trainer("lora", &common::training(), 0.1, 0);
    let m = t.evaluate().unwrap();
    assert_eq!(m.num_examples, 8);
    assert!((0.0..=1.0).contains(&m.accuracy) && (0.0..=1.0).contains(&m.macro_f1));
    assert!(m.extra.is_empty() && m.loss > 0.0);
    let probs = t.predict_proba(&common::examples(3, 9)).unwrap();
    assert_eq!(probs.len(), 3);
    for p in &probs {
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // Evaluation is deterministic (no dropout in eval mode).
    assert_eq!(t.evaluate().unwrap(), m);
}

#[test]
fn batched_probabilities_come_back_in_input_order() {
    // Batches are formed in length order; each row must still land on its own example, and
    // padding must not change it: every row equals that example predicted alone.
    let training = TrainingConfig {
        eval_batch_size: 3,
        ..common::training()
    };
    let t = trainer("lora", &training, 0.0, 0);
    let examples = common::examples(11, 4);
    let lengths: Vec<usize> = examples.iter().map(|e| e.input_ids.len()).collect();
    assert!(
        lengths.windows(2).any(|w| w[0] > w[1]),
        "the fixture must not already be in length order: {lengths:?}"
    );
    let batched = t.predict_proba(&examples).unwrap();
    assert_eq!(batched.len(), examples.len());
    for (i, e) in examples.iter().enumerate() {
        let alone = t.predict_proba(std::slice::from_ref(e)).unwrap();
        for (a, b) in alone[0].iter().zip(&batched[i]) {
            assert!(
                (a - b).abs() < 1e-5,
                "example {i}: {:?} vs {:?}",
                alone[0],
                batched[i]
            );
        }
    }
}

#[test]
fn epochs_visit_every_example() {
    let training = TrainingConfig {
        local_epochs: Some(2),
        batch_size: 3,
        ..common::training()
    };
    let mut t = trainer("lora", &training, 0.0, 0);
    let stats = t.train(0).unwrap();
    assert_eq!((stats.steps, stats.examples_seen), (6, 16));
}

#[test]
fn restarting_the_factors_draws_a_afresh_zeroes_b_and_resumes_exactly() {
    let mut t = trainer("lora", &common::training(), 0.0, 0);
    t.configure(&Strategy::flora()).unwrap();
    let initial = t.save_state().unwrap();
    t.train(0).unwrap();
    t.restart_factors(41).unwrap();
    let roles = t.roles();
    let after = t.save_state().unwrap();
    for (name, role) in &roles {
        let (now, then) = (after.get(name).unwrap(), initial.get(name).unwrap());
        match role {
            Role::B => assert!(now.data().iter().all(|v| *v == 0.0), "{name}"),
            Role::A => assert_ne!(now.data(), then.data(), "{name}: a new draw"),
            _ => {}
        }
        assert_eq!(now.shape(), then.shape(), "{name}");
    }
    // The restart (fresh moments included) survives a save and a load.
    let mut other = trainer("lora", &common::training(), 0.0, 0);
    other.configure(&Strategy::flora()).unwrap();
    other.load_state(&after).unwrap();
    t.train(1).unwrap();
    other.train(1).unwrap();
    assert_eq!(t.save_state().unwrap(), other.save_state().unwrap());
}

/// The run keeps the largest client's initial factors for its analyses: a smaller client's
/// must be their leading rows of A and columns of B.
#[test]
fn a_smaller_rank_starts_from_the_leading_components_of_a_larger_one() {
    let build = |rank: usize| {
        let base = common::base(&common::tiny_bert());
        let mut cfg = common::adapter("lora");
        cfg.rank = rank;
        let spec = AdapterSpec::builtin("lora", &cfg).unwrap();
        let data = common::examples(8, 1);
        let t = LocalTrainer::new(
            0,
            base,
            &spec,
            &cfg,
            &common::training(),
            2,
            data.clone(),
            data,
            5,
            3,
        )
        .unwrap();
        t.save_state().unwrap()
    };
    let (small, large) = (build(2), build(4));
    let mut factors = 0;
    for (name, value) in small.iter().filter(|(n, _)| n.contains("lora_")) {
        let role = if name.contains("lora_A") {
            Role::A
        } else {
            Role::B
        };
        let cut = fedsa_core::slice_factor(name, role, large.get(name).unwrap(), 2).unwrap();
        assert_eq!(&cut, value, "{name}");
        factors += 1;
    }
    assert!(factors >= 4, "{factors}");
}
