//! Contextual multi-armed bandits over named arms.
//!
//! Arms and contexts are plain strings, so a bandit can choose between Whisper models, decoding
//! settings or anything else, separately for each content class. A context's statistics are
//! created on its first update; selecting in an unseen context uses the prior.
//!
//! Policies ([`Policy`]):
//! * `thompson` — Beta-Bernoulli Thompson sampling. Rewards in `[0, 1]` update fractionally
//!   (`alpha += r`, `beta += 1 - r`) from the prior `Beta(prior_alpha, prior_beta)`.
//! * `gaussian_thompson` — Thompson sampling for any finite reward with a Normal-Inverse-Gamma
//!   posterior (unknown mean *and* variance): prior mean 0, prior pseudo-count `kappa_0 = 1`,
//!   inverse-gamma shape `prior_alpha` and scale `prior_beta`.
//! * `ucb1` — `mean + ucb_c * sqrt(2 ln N / n)` with `N` the context's updates and `n` the arm's;
//!   untried arms first (in arm order), ties to the earlier arm. Rewards in `[0, 1]`. No RNG.
//! * `epsilon_greedy` — explore uniformly with probability
//!   `eps_t = max(epsilon_min, epsilon * epsilon_decay^t)`, `t` the context's updates so far;
//!   otherwise play untried arms first, then the best empirical mean. Any finite reward.
//!
//! Unbounded rewards must lie within `+-MAX_ABS_REWARD` (1e100) so the statistics stay finite.
//!
//! Discount (`thompson`, `gaussian_thompson` only; must be 1 otherwise): before each update of
//! a context every arm of that context decays toward the prior, `a <- a0 + discount * (a - a0)`
//! for the Beta parameters, and the Normal model's observation weights are scaled by `discount`,
//! so old evidence fades and the bandit tracks a changing best arm.
//!
//! Determinism: all randomness comes from one `ChaCha8Rng` seeded with `seed_from_u64(seed)`
//! (stream 0). Serialised state stores the seed and the generator's word position, so a
//! restored bandit continues exactly the sequence the original would have produced.

mod config;
mod model;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{CoreError, CoreResult};
pub use config::{BanditConfig, Policy, MAX_ABS_REWARD};
use model::{argmax, normal_posterior, uniform_index, ArmState, ContextState, Model};
pub use state::STATE_VERSION;

/// A snapshot of one arm in one context, from [`Bandit::arm_stats`].
#[derive(Clone, Debug, PartialEq)]
pub struct ArmStats {
    pub arm: String,
    /// Updates recorded for the arm (never discounted).
    pub pulls: u64,
    /// Empirical mean of every reward recorded (never discounted); `None` before a pull.
    pub mean_reward: Option<f64>,
    /// The estimate [`Bandit::best_arm`] ranks by: the posterior mean for Thompson policies,
    /// the empirical mean otherwise (`None` for an untried arm).
    pub mean: Option<f64>,
    /// Policy-specific values: `alpha`, `beta` (thompson); posterior `mu`, `kappa`, `alpha`,
    /// `beta` and effective `weight` (gaussian_thompson); `ucb` (ucb1, infinite when untried);
    /// the context's current `epsilon` (epsilon_greedy).
    pub params: Vec<(&'static str, f64)>,
}

/// A seeded, serialisable contextual bandit over named arms.
#[derive(Clone, Debug)]
pub struct Bandit {
    config: BanditConfig,
    arms: Vec<String>,
    arm_index: HashMap<String, usize>,
    contexts: HashMap<String, ContextState>,
    /// The state of an unseen context.
    prior_state: ContextState,
    rng: ChaCha8Rng,
}

impl Bandit {
    /// A bandit with no observations. Arms must be non-empty, unique and non-blank.
    pub fn new(config: BanditConfig, arms: Vec<String>) -> CoreResult<Self> {
        config.validate()?;
        let arm_index = index_arms(&arms)?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        let prior_state = ContextState {
            updates: 0,
            arms: vec![ArmState::fresh(config.fresh_model()); arms.len()],
        };
        Ok(Bandit {
            config,
            arms,
            arm_index,
            contexts: HashMap::new(),
            prior_state,
            rng,
        })
    }

    pub fn config(&self) -> &BanditConfig {
        &self.config
    }

    pub fn policy(&self) -> Policy {
        self.config.policy
    }

    pub fn arms(&self) -> &[String] {
        &self.arms
    }

    /// Index of the arm named `arm`.
    pub fn arm_position(&self, arm: &str) -> CoreResult<usize> {
        self.arm_index.get(arm).copied().ok_or_else(|| {
            CoreError::InvalidArgument(format!(
                "unknown arm {arm:?}; arms are {}",
                self.arms.join(", ")
            ))
        })
    }

    /// Contexts that have received at least one update, sorted.
    pub fn contexts(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Choose an arm for `context`; returns its index into [`Bandit::arms`].
    pub fn select(&mut self, context: &str) -> usize {
        let state = self.contexts.get(context).unwrap_or(&self.prior_state);
        choose(&self.config, state, &mut self.rng)
    }

    /// Choose an arm for `context`; returns its name.
    pub fn select_arm(&mut self, context: &str) -> &str {
        let i = self.select(context);
        &self.arms[i]
    }

    /// [`Bandit::select`] for each context in order (same RNG sequence as a loop of selects).
    pub fn select_many<S: AsRef<str>>(&mut self, contexts: &[S]) -> Vec<usize> {
        contexts.iter().map(|c| self.select(c.as_ref())).collect()
    }

    /// Record `reward` for `arm` played in `context`.
    pub fn update(&mut self, context: &str, arm: &str, reward: f64) -> CoreResult<()> {
        let i = self.arm_position(arm)?;
        self.check_reward(reward)?;
        self.apply(context, i, reward);
        Ok(())
    }

    /// Record many updates at once; nothing is recorded unless every entry is valid.
    pub fn update_many<C: AsRef<str>, A: AsRef<str>>(
        &mut self,
        contexts: &[C],
        arms: &[A],
        rewards: &[f64],
    ) -> CoreResult<()> {
        if contexts.len() != arms.len() || arms.len() != rewards.len() {
            return Err(CoreError::InvalidArgument(format!(
                "update_many needs equal lengths, got {} contexts, {} arms, {} rewards",
                contexts.len(),
                arms.len(),
                rewards.len()
            )));
        }
        let mut indices = Vec::with_capacity(arms.len());
        for (arm, &reward) in arms.iter().zip(rewards) {
            indices.push(self.arm_position(arm.as_ref())?);
            self.check_reward(reward)?;
        }
        for ((context, i), reward) in contexts.iter().zip(indices).zip(rewards) {
            self.apply(context.as_ref(), i, *reward);
        }
        Ok(())
    }

    /// The arm with the highest estimated mean in `context` (see [`ArmStats::mean`]); the
    /// first arm when nothing has been learnt yet.
    pub fn best_arm(&self, context: &str) -> usize {
        let state = self.state(context);
        let prior = self.config.prior();
        argmax(
            state
                .arms
                .iter()
                .map(|a| a.estimate(prior).unwrap_or(f64::NEG_INFINITY)),
        )
    }

    /// Per-arm statistics of `context`, in arm order.
    pub fn arm_stats(&self, context: &str) -> Vec<ArmStats> {
        let state = self.state(context);
        let prior = self.config.prior();
        let epsilon = self.config.epsilon_at(state.updates);
        self.arms
            .iter()
            .zip(&state.arms)
            .map(|(name, arm)| {
                let params = match arm.model {
                    Model::Beta { alpha, beta } => vec![("alpha", alpha), ("beta", beta)],
                    Model::Normal { weight, .. } => {
                        let post = normal_posterior(&arm.model, prior);
                        vec![
                            ("mu", post.mu),
                            ("kappa", post.kappa),
                            ("alpha", post.alpha),
                            ("beta", post.beta),
                            ("weight", weight),
                        ]
                    }
                    Model::Counts if self.config.policy == Policy::Ucb1 => {
                        vec![("ucb", arm.ucb(state.updates, self.config.ucb_c))]
                    }
                    Model::Counts => vec![("epsilon", epsilon)],
                };
                ArmStats {
                    arm: name.clone(),
                    pulls: arm.pulls,
                    mean_reward: arm.mean_reward(),
                    mean: arm.estimate(prior),
                    params,
                }
            })
            .collect()
    }

    /// The exploration rate `epsilon_greedy` would use in `context` now.
    pub fn epsilon(&self, context: &str) -> f64 {
        self.config.epsilon_at(self.state(context).updates)
    }

    fn state(&self, context: &str) -> &ContextState {
        self.contexts.get(context).unwrap_or(&self.prior_state)
    }

    fn check_reward(&self, reward: f64) -> CoreResult<()> {
        if !reward.is_finite() {
            return Err(CoreError::InvalidArgument(format!(
                "reward must be finite, got {reward}"
            )));
        }
        if self.config.policy.unit_rewards() && !(0.0..=1.0).contains(&reward) {
            return Err(CoreError::InvalidArgument(format!(
                "{} rewards must be in [0, 1], got {reward}",
                self.config.policy
            )));
        }
        if reward.abs() > MAX_ABS_REWARD {
            return Err(CoreError::InvalidArgument(format!(
                "rewards must be within +-{MAX_ABS_REWARD:e}, got {reward}"
            )));
        }
        Ok(())
    }

    fn apply(&mut self, context: &str, arm: usize, reward: f64) {
        if !self.contexts.contains_key(context) {
            self.contexts
                .insert(context.to_owned(), self.prior_state.clone());
        }
        let Some(state) = self.contexts.get_mut(context) else {
            return;
        };
        if self.config.discount < 1.0 {
            let prior = self.config.prior();
            for a in &mut state.arms {
                a.discount(self.config.discount, prior);
            }
        }
        state.arms[arm].observe(reward);
        state.updates += 1;
    }
}

/// One selection under `config.policy`.
fn choose(config: &BanditConfig, state: &ContextState, rng: &mut ChaCha8Rng) -> usize {
    match config.policy {
        Policy::Thompson | Policy::GaussianThompson => {
            let prior = config.prior();
            argmax(state.arms.iter().map(|a| a.draw(prior, rng)))
        }
        Policy::Ucb1 => argmax(
            state
                .arms
                .iter()
                .map(|a| a.ucb(state.updates, config.ucb_c)),
        ),
        Policy::EpsilonGreedy => {
            let explore = rng.random::<f64>() < config.epsilon_at(state.updates);
            if explore {
                uniform_index(state.arms.len(), rng)
            } else {
                argmax(
                    state
                        .arms
                        .iter()
                        .map(|a| a.mean_reward().unwrap_or(f64::INFINITY)),
                )
            }
        }
    }
}

fn index_arms(arms: &[String]) -> CoreResult<HashMap<String, usize>> {
    if arms.is_empty() {
        return Err(CoreError::InvalidArgument(
            "a bandit needs at least one arm".into(),
        ));
    }
    let mut index = HashMap::with_capacity(arms.len());
    for (i, arm) in arms.iter().enumerate() {
        if arm.trim().is_empty() {
            return Err(CoreError::InvalidArgument(format!(
                "arm names must not be blank (arm {i})"
            )));
        }
        if index.insert(arm.clone(), i).is_some() {
            return Err(CoreError::InvalidArgument(format!("duplicate arm {arm:?}")));
        }
    }
    Ok(index)
}
