use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

fn arms(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn bandit(config: BanditConfig, n_arms: usize) -> Bandit {
    let names: Vec<String> = (0..n_arms).map(|i| format!("arm{i}")).collect();
    Bandit::new(config, names).unwrap()
}

/// Play `rounds` Bernoulli rounds in context "c"; returns how often each arm was chosen.
fn play(b: &mut Bandit, env: &mut ChaCha8Rng, probs: &[f64], rounds: usize) -> Vec<usize> {
    let mut counts = vec![0; probs.len()];
    for _ in 0..rounds {
        let i = b.select("c");
        counts[i] += 1;
        let reward = if env.random::<f64>() < probs[i] {
            1.0
        } else {
            0.0
        };
        let name = b.arms()[i].clone();
        b.update("c", &name, reward).unwrap();
    }
    counts
}

/// Selections of a run with rewards from a fixed environment, as a sequence of arm indices.
fn trace(b: &mut Bandit, env: &mut ChaCha8Rng, rounds: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for k in 0..rounds {
        let context = ["a", "b", "c"][k % 3];
        let i = b.select(context);
        out.push(i);
        let raw = env.random::<f64>() * (i + 1) as f64 / b.arms().len() as f64;
        let reward = if b.policy().unit_rewards() {
            raw
        } else {
            10.0 * raw - 3.0
        };
        let name = b.arms()[i].clone();
        b.update(context, &name, reward).unwrap();
    }
    out
}

#[test]
fn thompson_concentrates_on_best_arm() {
    let mut b = bandit(BanditConfig::new(Policy::Thompson), 3);
    let mut env = ChaCha8Rng::seed_from_u64(7);
    let counts = play(&mut b, &mut env, &[0.2, 0.5, 0.8], 2000);
    assert!(counts[2] > 1700, "pulls {counts:?}");
    assert_eq!(b.best_arm("c"), 2);
    assert_eq!(b.arm_stats("c")[2].pulls as usize, counts[2]);
}

#[test]
fn gaussian_thompson_finds_highest_mean() {
    let mut b = bandit(BanditConfig::new(Policy::GaussianThompson), 3);
    let mut env = ChaCha8Rng::seed_from_u64(3);
    let means = [1.0, 3.0, 2.0];
    let mut counts = [0; 3];
    for _ in 0..1500 {
        let i = b.select("");
        counts[i] += 1;
        let noise: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut env);
        let name = b.arms()[i].clone();
        b.update("", &name, means[i] + noise).unwrap();
    }
    assert!(counts[1] > 1200, "pulls {counts:?}");
    let stats = b.arm_stats("");
    let mean = stats[1].mean.unwrap();
    assert!((mean - 3.0).abs() < 0.15, "posterior mean {mean}");
}

#[test]
fn discount_tracks_a_switch_of_the_best_arm() {
    let share_after_switch = |discount: f64| {
        let mut config = BanditConfig::new(Policy::Thompson);
        config.discount = discount;
        config.seed = 11;
        let mut b = bandit(config, 2);
        let mut env = ChaCha8Rng::seed_from_u64(5);
        play(&mut b, &mut env, &[0.8, 0.2], 1000);
        play(&mut b, &mut env, &[0.2, 0.8], 50); // the best arm switched; time to adapt
        let tail = play(&mut b, &mut env, &[0.2, 0.8], 250);
        tail[1] as f64 / 250.0
    };
    let discounted = share_after_switch(0.95);
    let plain = share_after_switch(1.0);
    assert!(discounted > 0.85, "discounted share {discounted}");
    assert!(plain < 0.3, "undiscounted share {plain}");
}

#[test]
fn discount_decays_toward_the_prior() {
    let mut config = BanditConfig::new(Policy::Thompson);
    config.discount = 0.5;
    config.prior_alpha = 2.0;
    let mut b = Bandit::new(config, arms(&["x", "y"])).unwrap();
    b.update("c", "x", 1.0).unwrap(); // x: (3, 1)
    b.update("c", "y", 0.25).unwrap(); // x: (2.5, 1); y: (2.25, 1.75)
    let s = b.arm_stats("c");
    assert_eq!(s[0].params, vec![("alpha", 2.5), ("beta", 1.0)]);
    assert_eq!(s[1].params, vec![("alpha", 2.25), ("beta", 1.75)]);
}

#[test]
fn ucb1_matches_hand_computation() {
    let mut config = BanditConfig::new(Policy::Ucb1);
    config.ucb_c = 0.5;
    let mut b = Bandit::new(config, arms(&["a", "b", "c", "d"])).unwrap();
    // Untried arms come first, in arm order.
    assert_eq!(b.select_arm("k"), "a");
    b.update("k", "a", 1.0).unwrap();
    assert_eq!(b.select_arm("k"), "b");
    b.update("k", "b", 0.0).unwrap();
    b.update("k", "a", 0.5).unwrap();
    b.update("k", "c", 1.0).unwrap();
    assert_eq!(b.select_arm("k"), "d");
    b.update("k", "d", 0.2).unwrap();
    let n = 5.0_f64;
    let expected = [
        0.75 + 0.5 * (2.0 * n.ln() / 2.0).sqrt(),
        0.0 + 0.5 * (2.0 * n.ln() / 1.0).sqrt(),
        1.0 + 0.5 * (2.0 * n.ln() / 1.0).sqrt(),
        0.2 + 0.5 * (2.0 * n.ln() / 1.0).sqrt(),
    ];
    for (stats, want) in b.arm_stats("k").iter().zip(expected) {
        let (name, got) = stats.params[0];
        assert_eq!(name, "ucb");
        assert!((got - want).abs() < 1e-12, "{}: {got} vs {want}", stats.arm);
    }
    assert_eq!(b.select_arm("k"), "c");
    assert_eq!(b.arm_stats("other")[0].params[0].1, f64::INFINITY);
}

#[test]
fn epsilon_decays_as_documented() {
    let mut config = BanditConfig::new(Policy::EpsilonGreedy);
    config.epsilon = 0.5;
    config.epsilon_decay = 0.9;
    config.epsilon_min = 0.1;
    let mut b = Bandit::new(config, arms(&["a", "b"])).unwrap();
    for t in 0..40 {
        let want = (0.5 * 0.9_f64.powi(t)).max(0.1);
        assert!((b.epsilon("c") - want).abs() < 1e-15, "t={t}");
        assert_eq!(
            b.arm_stats("c")[0].params,
            vec![("epsilon", b.epsilon("c"))]
        );
        b.update("c", "a", 0.3).unwrap();
    }
    assert_eq!(b.epsilon("c"), 0.1);
    assert_eq!(b.epsilon("unseen"), 0.5);
}

#[test]
fn epsilon_greedy_explores_at_rate_epsilon() {
    let mut config = BanditConfig::new(Policy::EpsilonGreedy);
    config.epsilon = 0.3;
    config.epsilon_decay = 1.0;
    let mut b = Bandit::new(config, arms(&["a", "b", "c"])).unwrap();
    for arm in ["a", "b", "c"] {
        b.update("x", arm, if arm == "b" { 5.0 } else { 1.0 })
            .unwrap();
    }
    let picks = b.select_many(&vec!["x"; 10_000]);
    let others = picks.iter().filter(|&&i| i != 1).count() as f64 / 10_000.0;
    // Exploration picks a non-greedy arm 2/3 of the time: 0.3 * 2/3 = 0.2.
    assert!((others - 0.2).abs() < 0.02, "non-greedy share {others}");
}

#[test]
fn same_seed_same_selections() {
    for policy in Policy::ALL {
        let run = |seed: u64| {
            let mut config = BanditConfig::new(policy);
            config.seed = seed;
            trace(
                &mut bandit(config, 4),
                &mut ChaCha8Rng::seed_from_u64(1),
                300,
            )
        };
        assert_eq!(run(42), run(42), "{policy}");
        if policy != Policy::Ucb1 {
            assert_ne!(run(42), run(43), "{policy}");
        }
    }
}

#[test]
fn restored_bandit_continues_the_same_sequence() {
    for policy in Policy::ALL {
        let mut config = BanditConfig::new(policy);
        config.seed = 9;
        if policy.supports_discount() {
            config.discount = 0.97;
        }
        let mut straight = bandit(config.clone(), 3);
        let mut env = ChaCha8Rng::seed_from_u64(2);
        let full = trace(&mut straight, &mut env, 600);

        let mut first = bandit(config, 3);
        let mut env = ChaCha8Rng::seed_from_u64(2);
        let mut head = trace(&mut first, &mut env, 300);
        for mut restored in [
            Bandit::from_json(&first.to_json()).unwrap(),
            Bandit::from_bytes(&first.to_bytes()).unwrap(),
        ] {
            let mut env = env.clone();
            let mut seq = head.clone();
            seq.extend(trace(&mut restored, &mut env, 300));
            assert_eq!(seq, full, "{policy}");
            assert_eq!(restored.to_json(), straight.to_json(), "{policy}");
        }
        head.clear();
    }
}

#[test]
fn select_many_equals_a_loop_of_selects() {
    let mut a = bandit(BanditConfig::new(Policy::Thompson), 5);
    let mut env = ChaCha8Rng::seed_from_u64(4);
    trace(&mut a, &mut env, 200);
    let mut b = a.clone();
    let contexts: Vec<String> = (0..1000).map(|i| format!("ctx{}", i % 7)).collect();
    let looped: Vec<usize> = contexts.iter().map(|c| b.select(c)).collect();
    assert_eq!(a.select_many(&contexts), looped);
}

#[test]
fn update_many_is_all_or_nothing() {
    let mut b = Bandit::new(BanditConfig::new(Policy::Thompson), arms(&["a", "b"])).unwrap();
    b.update_many(&["x", "y", "x"], &["a", "b", "b"], &[1.0, 0.0, 0.5])
        .unwrap();
    assert_eq!(b.contexts(), vec!["x", "y"]);
    assert_eq!(
        b.arm_stats("x")[1].params,
        vec![("alpha", 1.5), ("beta", 1.5)]
    );
    let before = b.to_json();
    let err = b.update_many(&["x", "x"], &["a", "b"], &[1.0, 2.0]);
    assert!(matches!(err, Err(CoreError::InvalidArgument(_))));
    let err = b.update_many(&["x"], &["a", "b"], &[1.0, 2.0]);
    assert!(matches!(err, Err(CoreError::InvalidArgument(_))));
    assert_eq!(b.to_json(), before);
}

#[test]
fn invalid_arguments_are_rejected() {
    let new = |config: BanditConfig, names: &[&str]| Bandit::new(config, arms(names));
    let ok = BanditConfig::new(Policy::Thompson);
    let invalid = |r: CoreResult<Bandit>| matches!(r, Err(CoreError::InvalidArgument(_)));
    assert!(invalid(new(ok.clone(), &[])));
    assert!(invalid(new(ok.clone(), &["a", "a"])));
    assert!(invalid(new(ok.clone(), &["a", " "])));
    let tweaks: [fn(&mut BanditConfig); 8] = [
        |c| c.discount = 0.0,
        |c| c.discount = 1.5,
        |c| c.prior_alpha = 0.0,
        |c| c.prior_beta = f64::NAN,
        |c| c.ucb_c = -1.0,
        |c| c.epsilon = 1.1,
        |c| c.epsilon_decay = 0.0,
        |c| c.epsilon_min = -0.1,
    ];
    for tweak in tweaks {
        let mut config = ok.clone();
        tweak(&mut config);
        assert!(invalid(new(config, &["a"])), "{ok:?}");
    }
    let mut ucb = BanditConfig::new(Policy::Ucb1);
    ucb.discount = 0.9;
    assert!(invalid(new(ucb, &["a"])));
    assert!(matches!(
        "ucb2".parse::<Policy>(),
        Err(CoreError::InvalidArgument(_))
    ));

    let mut b = new(ok, &["a", "b"]).unwrap();
    for (arm, reward) in [("c", 0.5), ("a", 1.5), ("a", -0.1), ("a", f64::NAN)] {
        assert!(matches!(
            b.update("x", arm, reward),
            Err(CoreError::InvalidArgument(_))
        ));
    }
    let mut g = new(BanditConfig::new(Policy::GaussianThompson), &["a"]).unwrap();
    g.update("x", "a", -250.0).unwrap();
    assert!(g.update("x", "a", f64::INFINITY).is_err());
    assert!(g.update("x", "a", -1e101).is_err());
}

#[test]
fn corrupt_state_is_rejected() {
    let mut b = bandit(BanditConfig::new(Policy::GaussianThompson), 3);
    trace(&mut b, &mut ChaCha8Rng::seed_from_u64(8), 50);
    let state = |r: CoreResult<Bandit>| matches!(r, Err(CoreError::State(_)));

    let bytes = b.to_bytes();
    assert!(state(Bandit::from_bytes(&bytes[..bytes.len() - 1])));
    assert!(state(Bandit::from_bytes(&bytes[..20])));
    assert!(state(Bandit::from_bytes(b"")));
    for pos in [10, 40, bytes.len() / 2, bytes.len() - 2] {
        let mut flipped = bytes.clone();
        flipped[pos] ^= 0x10;
        assert!(state(Bandit::from_bytes(&flipped)), "flip at {pos}");
    }
    let mut wrong_version = bytes.clone();
    wrong_version[8] = 2;
    assert!(state(Bandit::from_bytes(&wrong_version)));

    let json = b.to_json();
    assert!(state(Bandit::from_json("")));
    assert!(state(Bandit::from_json("[1, 2]")));
    assert!(state(Bandit::from_json(&json[..json.len() / 2])));
    assert!(state(Bandit::from_json(
        &json.replace("\"version\": 1", "\"version\": 2")
    )));
    assert!(state(Bandit::from_json(
        &json.replace("whisper-cascade-bandit", "other")
    )));
    assert!(state(Bandit::from_json(
        &json.replace("\"weight\"", "\"alpha\"")
    )));
    assert!(state(Bandit::from_json(
        &json.replace("\"arm2\"", "\"arm0\"")
    )));
    assert!(state(Bandit::from_json(
        &json.replace("\"gaussian_thompson\"", "\"thompson\"")
    )));
    let key = "\"m2\": ";
    let at = json
        .match_indices(key)
        .map(|(i, _)| i + key.len())
        .find(|&i| !json[i..].starts_with('0'))
        .unwrap();
    let negative = format!("{}-{}", &json[..at], &json[at..]);
    assert!(state(Bandit::from_json(&negative)));
    assert!(Bandit::from_json(&json).is_ok());
}

#[test]
fn best_arm_and_stats_without_data() {
    let b = Bandit::new(BanditConfig::new(Policy::EpsilonGreedy), arms(&["a", "b"])).unwrap();
    assert_eq!(b.best_arm("nothing"), 0);
    let stats = b.arm_stats("nothing");
    assert_eq!(stats[1].pulls, 0);
    assert_eq!(stats[1].mean, None);
    assert!(b.contexts().is_empty());
}
