//! Policies and their hyper-parameters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::model::{Model, Prior};
use crate::error::{CoreError, CoreResult};

/// Largest reward magnitude accepted by the unbounded policies, so sums and squared deviations
/// stay finite.
pub const MAX_ABS_REWARD: f64 = 1e100;

/// A bandit policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    Thompson,
    GaussianThompson,
    Ucb1,
    EpsilonGreedy,
}

impl Policy {
    /// Every policy, in the order of their names in [`Policy::NAMES`].
    pub const ALL: [Policy; 4] = [
        Policy::Thompson,
        Policy::GaussianThompson,
        Policy::Ucb1,
        Policy::EpsilonGreedy,
    ];
    /// The accepted policy names.
    pub const NAMES: [&'static str; 4] =
        ["thompson", "gaussian_thompson", "ucb1", "epsilon_greedy"];

    /// The policy's name as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Whether rewards must lie in `[0, 1]` (otherwise any finite value is accepted).
    pub fn unit_rewards(self) -> bool {
        matches!(self, Policy::Thompson | Policy::Ucb1)
    }

    pub(crate) fn supports_discount(self) -> bool {
        matches!(self, Policy::Thompson | Policy::GaussianThompson)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = CoreError;

    fn from_str(s: &str) -> CoreResult<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                CoreError::InvalidArgument(format!(
                    "unknown bandit policy {s:?}; expected one of {}",
                    Self::NAMES.join(", ")
                ))
            })
    }
}

/// Policy and hyper-parameters of a [`Bandit`]; see the module docs for their meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BanditConfig {
    pub policy: Policy,
    pub seed: u64,
    pub discount: f64,
    pub prior_alpha: f64,
    pub prior_beta: f64,
    pub ucb_c: f64,
    pub epsilon: f64,
    pub epsilon_decay: f64,
    pub epsilon_min: f64,
}

impl BanditConfig {
    /// The defaults for `policy`: seed 0, no discount, Beta(1, 1) prior, c = 1,
    /// epsilon 0.1 decaying by 0.999 per update down to 0.01.
    pub fn new(policy: Policy) -> Self {
        BanditConfig {
            policy,
            seed: 0,
            discount: 1.0,
            prior_alpha: 1.0,
            prior_beta: 1.0,
            ucb_c: 1.0,
            epsilon: 0.1,
            epsilon_decay: 0.999,
            epsilon_min: 0.01,
        }
    }

    /// Check every parameter's range.
    pub fn validate(&self) -> CoreResult<()> {
        let bad = |what: String| Err(CoreError::InvalidArgument(what));
        let in_unit = |x: f64| (0.0..=1.0).contains(&x);
        if !(self.discount > 0.0 && self.discount <= 1.0) {
            return bad(format!("discount must be in (0, 1], got {}", self.discount));
        }
        if self.discount != 1.0 && !self.policy.supports_discount() {
            return bad(format!(
                "discount applies to Thompson policies only, not {}",
                self.policy
            ));
        }
        for (name, v) in [
            ("prior_alpha", self.prior_alpha),
            ("prior_beta", self.prior_beta),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} must be finite and > 0, got {v}"));
            }
        }
        if !(self.ucb_c.is_finite() && self.ucb_c >= 0.0) {
            return bad(format!("ucb_c must be finite and >= 0, got {}", self.ucb_c));
        }
        for (name, v) in [("epsilon", self.epsilon), ("epsilon_min", self.epsilon_min)] {
            if !in_unit(v) {
                return bad(format!("{name} must be in [0, 1], got {v}"));
            }
        }
        if !(self.epsilon_decay > 0.0 && self.epsilon_decay <= 1.0) {
            return bad(format!(
                "epsilon_decay must be in (0, 1], got {}",
                self.epsilon_decay
            ));
        }
        Ok(())
    }

    pub(crate) fn prior(&self) -> Prior {
        Prior {
            alpha: self.prior_alpha,
            beta: self.prior_beta,
        }
    }

    pub(crate) fn fresh_model(&self) -> Model {
        match self.policy {
            Policy::Thompson => Model::Beta {
                alpha: self.prior_alpha,
                beta: self.prior_beta,
            },
            Policy::GaussianThompson => Model::Normal {
                weight: 0.0,
                mean: 0.0,
                m2: 0.0,
            },
            Policy::Ucb1 | Policy::EpsilonGreedy => Model::Counts,
        }
    }

    /// `max(epsilon_min, epsilon * epsilon_decay^t)`.
    pub(crate) fn epsilon_at(&self, updates: u64) -> f64 {
        let t = updates.min(i32::MAX as u64) as i32;
        (self.epsilon * self.epsilon_decay.powi(t)).max(self.epsilon_min)
    }
}
