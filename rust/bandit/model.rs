//! Per-arm statistics and the per-policy maths on them: posterior updates, discounting,
//! Thompson draws and the UCB1 index.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};

/// Prior mean of the Gaussian (Normal-Inverse-Gamma) model.
pub(crate) const NORMAL_PRIOR_MEAN: f64 = 0.0;
/// Prior pseudo-count (kappa_0) of the Gaussian model's mean.
pub(crate) const NORMAL_PRIOR_KAPPA: f64 = 1.0;

/// What a policy learns about one arm, beyond the plain counts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Model {
    /// Beta posterior of a Bernoulli success rate (`thompson`).
    Beta { alpha: f64, beta: f64 },
    /// Discounted sufficient statistics of a Normal with unknown mean and variance
    /// (`gaussian_thompson`): effective observation weight, weighted mean, and weighted sum
    /// of squared deviations (Welford's M2).
    Normal { weight: f64, mean: f64, m2: f64 },
    /// `ucb1` and `epsilon_greedy` only need pulls and the reward sum.
    Counts,
}

/// One arm's statistics within one context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArmState {
    /// Number of updates recorded for this arm (never discounted).
    pub pulls: u64,
    /// Sum of all rewards recorded for this arm (never discounted).
    pub reward_sum: f64,
    pub model: Model,
}

/// Everything a bandit knows about one context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContextState {
    /// Number of updates recorded in this context (sum of the arms' pulls).
    pub updates: u64,
    pub arms: Vec<ArmState>,
}

/// The prior parameters a model decays toward.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prior {
    pub alpha: f64,
    pub beta: f64,
}

impl ArmState {
    pub(crate) fn fresh(model: Model) -> Self {
        ArmState {
            pulls: 0,
            reward_sum: 0.0,
            model,
        }
    }

    /// Empirical (undiscounted) mean reward, `None` before the first pull.
    pub(crate) fn mean_reward(&self) -> Option<f64> {
        (self.pulls > 0).then(|| self.reward_sum / self.pulls as f64)
    }

    /// Record one reward.
    pub(crate) fn observe(&mut self, reward: f64) {
        self.pulls += 1;
        self.reward_sum += reward;
        match &mut self.model {
            Model::Beta { alpha, beta } => {
                *alpha += reward;
                *beta += 1.0 - reward;
            }
            Model::Normal { weight, mean, m2 } => {
                *weight += 1.0;
                let delta = reward - *mean;
                *mean += delta / *weight;
                *m2 += delta * (reward - *mean);
            }
            Model::Counts => {}
        }
    }

    /// Move the posterior a fraction `1 - gamma` of the way back to the prior.
    ///
    /// For the Normal model scaling the weight and M2 by `gamma` is the same as
    /// down-weighting every past observation by `gamma`, so the posterior computed from them
    /// relaxes toward the prior exactly like the Beta parameters do.
    pub(crate) fn discount(&mut self, gamma: f64, prior: Prior) {
        match &mut self.model {
            Model::Beta { alpha, beta } => {
                *alpha = prior.alpha + gamma * (*alpha - prior.alpha);
                *beta = prior.beta + gamma * (*beta - prior.beta);
            }
            Model::Normal { weight, m2, .. } => {
                *weight *= gamma;
                *m2 *= gamma;
            }
            Model::Counts => {}
        }
    }

    /// Posterior mean of the reward (what `best_arm` ranks by), `None` when the policy has no
    /// prior and the arm was never pulled.
    pub(crate) fn estimate(&self, prior: Prior) -> Option<f64> {
        match self.model {
            Model::Beta { alpha, beta } => Some(alpha / (alpha + beta)),
            Model::Normal { .. } => Some(normal_posterior(&self.model, prior).mu),
            Model::Counts => self.mean_reward(),
        }
    }

    /// One Thompson draw of the arm's mean reward.
    pub(crate) fn draw(&self, prior: Prior, rng: &mut ChaCha8Rng) -> f64 {
        let sample = match self.model {
            Model::Beta { alpha, beta } => Beta::new(alpha, beta).map(|d| d.sample(rng)).ok(),
            Model::Normal { .. } => {
                let post = normal_posterior(&self.model, prior);
                // precision ~ Gamma(alpha, rate = beta); mean ~ N(mu, 1 / (kappa * precision))
                Gamma::new(post.alpha, 1.0 / post.beta).ok().map(|g| {
                    let precision: f64 = g.sample(rng);
                    let z: f64 = StandardNormal.sample(rng);
                    post.mu + z / (post.kappa * precision).sqrt()
                })
            }
            Model::Counts => None,
        };
        // Degenerate draws (NaN from extreme parameters) fall back to the posterior mean.
        match sample {
            Some(x) if x.is_finite() => x,
            _ => self.estimate(prior).unwrap_or(0.0),
        }
    }

    /// The UCB1 index `mean + c * sqrt(2 ln N / n)`; infinite for an untried arm.
    pub(crate) fn ucb(&self, total_pulls: u64, c: f64) -> f64 {
        match self.mean_reward() {
            None => f64::INFINITY,
            Some(mean) => {
                let n = self.pulls as f64;
                mean + c * (2.0 * (total_pulls as f64).ln() / n).sqrt()
            }
        }
    }

    /// True when every number is finite and within its model's domain.
    pub(crate) fn is_valid(&self) -> bool {
        self.reward_sum.is_finite()
            && match self.model {
                Model::Beta { alpha, beta } => {
                    alpha.is_finite() && beta.is_finite() && alpha > 0.0 && beta > 0.0
                }
                Model::Normal { weight, mean, m2 } => {
                    weight.is_finite()
                        && mean.is_finite()
                        && m2.is_finite()
                        && weight >= 0.0
                        && m2 >= 0.0
                }
                Model::Counts => true,
            }
    }
}

/// Normal-Inverse-Gamma posterior parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NormalPosterior {
    pub mu: f64,
    pub kappa: f64,
    pub alpha: f64,
    pub beta: f64,
}

/// Conjugate update of NIG(mu0, kappa0, prior.alpha, prior.beta) with weighted statistics.
pub(crate) fn normal_posterior(model: &Model, prior: Prior) -> NormalPosterior {
    let (n, mean, m2) = match *model {
        Model::Normal { weight, mean, m2 } => (weight, mean, m2),
        _ => (0.0, 0.0, 0.0),
    };
    let kappa = NORMAL_PRIOR_KAPPA + n;
    let shift = mean - NORMAL_PRIOR_MEAN;
    NormalPosterior {
        mu: (NORMAL_PRIOR_KAPPA * NORMAL_PRIOR_MEAN + n * mean) / kappa,
        kappa,
        alpha: prior.alpha + n / 2.0,
        beta: prior.beta + 0.5 * m2 + NORMAL_PRIOR_KAPPA * n * shift * shift / (2.0 * kappa),
    }
}

/// Index of the largest value; ties (and NaN) go to the lowest index.
pub(crate) fn argmax(values: impl IntoIterator<Item = f64>) -> usize {
    let mut best = 0;
    let mut best_value = f64::NEG_INFINITY;
    for (i, v) in values.into_iter().enumerate() {
        if v > best_value {
            best = i;
            best_value = v;
        }
    }
    best
}

/// Uniform index in `0..n` (n > 0).
pub(crate) fn uniform_index(n: usize, rng: &mut ChaCha8Rng) -> usize {
    rng.random_range(0..n)
}
