//! Saving and restoring a [`Bandit`]: human-readable JSON and a compact binary form.
//!
//! Both carry a format version and the RNG position (seed + ChaCha8 word position, stream 0),
//! and both go through the same validation on the way back in: anything inconsistent is a
//! [`CoreError::State`]. The binary form ends with a CRC-32 so flipped bytes are caught too.
//!
//! Binary layout (little-endian): `b"WCBANDIT"`, `u32` version, policy `u8`, seed `u64`, seven
//! `f64` parameters (discount, prior_alpha, prior_beta, ucb_c, epsilon, epsilon_decay,
//! epsilon_min), word position `u128`, `u32` arm count and arm names, `u64` context count, then
//! per context its name, `u64` updates and per arm `u64` pulls, `f64` reward sum and the model's
//! `f64`s (beta: alpha, beta; gaussian: weight, mean, m2; counts: none), and finally the CRC-32
//! of everything before it. Strings are a `u32` byte length and UTF-8.

use std::collections::{BTreeMap, HashMap};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::model::{ArmState, ContextState, Model};
use super::{index_arms, Bandit, BanditConfig, Policy};
use crate::error::{CoreError, CoreResult};

const FORMAT: &str = "whisper-cascade-bandit";
const MAGIC: &[u8; 8] = b"WCBANDIT";
/// Version of both serialised forms; bump on any incompatible change.
pub const STATE_VERSION: u32 = 1;
const RNG_ALGORITHM: &str = "chacha8";
/// ChaCha word positions are 68-bit numbers.
const WORD_POS_LIMIT: u128 = 1 << 68;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RngState {
    algorithm: String,
    /// Decimal string: the position is a 68-bit number, beyond what JSON readers keep exact.
    word_pos: String,
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: &'static str,
    version: u32,
    config: &'a BanditConfig,
    arms: &'a [String],
    rng: RngState,
    contexts: BTreeMap<&'a str, &'a ContextState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Snapshot {
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: u32,
    config: BanditConfig,
    arms: Vec<String>,
    rng: RngState,
    contexts: HashMap<String, ContextState>,
}

#[derive(Deserialize)]
struct Header {
    format: Option<String>,
    version: Option<u32>,
}

fn bad(detail: impl std::fmt::Display) -> CoreError {
    CoreError::State(format!("invalid bandit state: {detail}"))
}

impl Bandit {
    /// The full state as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let snapshot = SnapshotRef {
            format: FORMAT,
            version: STATE_VERSION,
            config: &self.config,
            arms: &self.arms,
            rng: RngState {
                algorithm: RNG_ALGORITHM.into(),
                word_pos: self.rng.get_word_pos().to_string(),
            },
            contexts: self.contexts.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        };
        // Serialising plain structs of strings and finite floats cannot fail.
        serde_json::to_string_pretty(&snapshot).unwrap_or_default()
    }

    /// Restore a bandit written by [`Bandit::to_json`].
    pub fn from_json(text: &str) -> CoreResult<Self> {
        let header: Header = serde_json::from_str(text).map_err(bad)?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(bad(format!("not a {FORMAT} document")));
        }
        check_version(header.version.unwrap_or(0))?;
        let snap: Snapshot = serde_json::from_str(text).map_err(bad)?;
        if snap.rng.algorithm != RNG_ALGORITHM {
            return Err(bad(format!("unsupported RNG {:?}", snap.rng.algorithm)));
        }
        let word_pos: u128 = snap.rng.word_pos.parse().map_err(bad)?;
        restore(snap.config, snap.arms, word_pos, snap.contexts)
    }

    /// The full state in the compact binary form described in the module docs.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(
            64 + 48 * self.contexts.len() * self.arms.len(),
        ));
        w.0.extend_from_slice(MAGIC);
        w.u32(STATE_VERSION);
        let c = &self.config;
        w.0.push(c.policy as u8);
        w.u64(c.seed);
        for v in [
            c.discount,
            c.prior_alpha,
            c.prior_beta,
            c.ucb_c,
            c.epsilon,
            c.epsilon_decay,
            c.epsilon_min,
        ] {
            w.f64(v);
        }
        w.0.extend_from_slice(&self.rng.get_word_pos().to_le_bytes());
        w.u32(self.arms.len() as u32);
        for arm in &self.arms {
            w.str(arm);
        }
        let mut names: Vec<&String> = self.contexts.keys().collect();
        names.sort_unstable();
        w.u64(names.len() as u64);
        for name in names {
            let state = &self.contexts[name];
            w.str(name);
            w.u64(state.updates);
            for arm in &state.arms {
                w.u64(arm.pulls);
                w.f64(arm.reward_sum);
                match arm.model {
                    Model::Beta { alpha, beta } => {
                        w.f64(alpha);
                        w.f64(beta);
                    }
                    Model::Normal { weight, mean, m2 } => {
                        w.f64(weight);
                        w.f64(mean);
                        w.f64(m2);
                    }
                    Model::Counts => {}
                }
            }
        }
        let crc = crc32(&w.0);
        w.u32(crc);
        w.0
    }

    /// Restore a bandit written by [`Bandit::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> CoreResult<Self> {
        if bytes.len() < MAGIC.len() + 8 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a bandit state (bad magic)"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let mut r = Reader(&body[MAGIC.len()..]);
        check_version(r.u32()?)?;
        if crc32(body).to_le_bytes() != tail {
            return Err(bad("checksum mismatch (corrupt or truncated)"));
        }
        let policy = *Policy::ALL
            .get(r.take(1)?[0] as usize)
            .ok_or_else(|| bad("unknown policy code"))?;
        let seed = r.u64()?;
        let mut p = [0.0; 7];
        for v in &mut p {
            *v = r.f64()?;
        }
        let config = BanditConfig {
            policy,
            seed,
            discount: p[0],
            prior_alpha: p[1],
            prior_beta: p[2],
            ucb_c: p[3],
            epsilon: p[4],
            epsilon_decay: p[5],
            epsilon_min: p[6],
        };
        let word_pos = u128::from_le_bytes(r.take(16)?.try_into().map_err(bad)?);
        let n_arms = r.u32()? as usize;
        let arms = (0..n_arms)
            .map(|_| r.str())
            .collect::<CoreResult<Vec<_>>>()?;
        let n_contexts = r.u64()?;
        let mut contexts = HashMap::new();
        for _ in 0..n_contexts {
            let name = r.str()?;
            let updates = r.u64()?;
            let mut states = Vec::with_capacity(n_arms.min(r.0.len()));
            for _ in 0..n_arms {
                let pulls = r.u64()?;
                let reward_sum = r.f64()?;
                let model = match policy {
                    Policy::Thompson => Model::Beta {
                        alpha: r.f64()?,
                        beta: r.f64()?,
                    },
                    Policy::GaussianThompson => Model::Normal {
                        weight: r.f64()?,
                        mean: r.f64()?,
                        m2: r.f64()?,
                    },
                    Policy::Ucb1 | Policy::EpsilonGreedy => Model::Counts,
                };
                states.push(ArmState {
                    pulls,
                    reward_sum,
                    model,
                });
            }
            let state = ContextState {
                updates,
                arms: states,
            };
            if contexts.insert(name, state).is_some() {
                return Err(bad("duplicate context"));
            }
        }
        if !r.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        restore(config, arms, word_pos, contexts)
    }
}

fn check_version(version: u32) -> CoreResult<()> {
    if version != STATE_VERSION {
        return Err(bad(format!(
            "unsupported format version {version} (this build reads {STATE_VERSION})"
        )));
    }
    Ok(())
}

/// Rebuild a bandit from decoded parts, checking that they are consistent.
fn restore(
    config: BanditConfig,
    arms: Vec<String>,
    word_pos: u128,
    contexts: HashMap<String, ContextState>,
) -> CoreResult<Bandit> {
    config.validate().map_err(bad)?;
    index_arms(&arms).map_err(bad)?;
    if word_pos >= WORD_POS_LIMIT {
        return Err(bad("RNG word position out of range"));
    }
    let expected = std::mem::discriminant(&config.fresh_model());
    for (name, state) in &contexts {
        let consistent = state.arms.len() == arms.len()
            && state
                .arms
                .iter()
                .map(|a| a.pulls)
                .try_fold(0u64, u64::checked_add)
                == Some(state.updates)
            && state
                .arms
                .iter()
                .all(|a| a.is_valid() && std::mem::discriminant(&a.model) == expected);
        if !consistent {
            return Err(bad(format!(
                "context {name:?} does not match the arms or policy"
            )));
        }
    }
    let mut bandit = Bandit::new(config, arms).map_err(bad)?;
    bandit.contexts = contexts;
    bandit.rng = ChaCha8Rng::seed_from_u64(bandit.config.seed);
    bandit.rng.set_word_pos(word_pos);
    Ok(bandit)
}

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> CoreResult<&[u8]> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> CoreResult<[u8; N]> {
        self.take(N)?.try_into().map_err(bad)
    }
    fn u32(&mut self) -> CoreResult<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> CoreResult<u64> {
        self.array().map(u64::from_le_bytes)
    }
    fn f64(&mut self) -> CoreResult<f64> {
        self.array().map(f64::from_le_bytes)
    }
    fn str(&mut self) -> CoreResult<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(bad)
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}
