//! Python bindings for [`crate::bandit`].
//!
//! The core sits behind a `Mutex` in a frozen pyclass, so one `Bandit` may be shared by
//! several Python threads. Batch calls and (de)serialisation release the GIL; the lock is only
//! ever taken inside those GIL-free sections or briefly with the GIL held, never the other way
//! round, so the two cannot deadlock.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use super::to_pyerr;
use crate::bandit::{Bandit as CoreBandit, BanditConfig};
use crate::error::CoreError;

/// A seeded contextual multi-armed bandit over named arms (see `whisper_cascade.bandit`).
#[pyclass(frozen, name = "Bandit", module = "whisper_cascade._native")]
pub struct Bandit {
    core: Mutex<CoreBandit>,
    /// The arm names as Python strings, handed out by reference from the selections.
    arm_names: Vec<Py<PyString>>,
}

impl Bandit {
    fn wrap(py: Python<'_>, core: CoreBandit) -> Self {
        let arm_names = core
            .arms()
            .iter()
            .map(|a| PyString::new(py, a).unbind())
            .collect();
        Bandit {
            core: Mutex::new(core),
            arm_names,
        }
    }

    fn lock(&self) -> MutexGuard<'_, CoreBandit> {
        // A panic cannot leave the core half-updated (updates validate first), so a poisoned
        // lock still guards consistent data.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn name(&self, py: Python<'_>, index: usize) -> Py<PyString> {
        self.arm_names[index].clone_ref(py)
    }
}

fn invalid(msg: impl Into<String>) -> PyErr {
    to_pyerr(CoreError::InvalidArgument(msg.into()))
}

#[pymethods]
impl Bandit {
    #[new]
    #[pyo3(signature = (
        policy, arms, *, seed = None, discount = 1.0, prior_alpha = 1.0, prior_beta = 1.0,
        ucb_c = 1.0, epsilon = 0.1, epsilon_decay = 0.999, epsilon_min = 0.01
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        policy: &str,
        arms: Vec<String>,
        seed: Option<&Bound<'_, PyAny>>,
        discount: f64,
        prior_alpha: f64,
        prior_beta: f64,
        ucb_c: f64,
        epsilon: f64,
        epsilon_decay: f64,
        epsilon_min: f64,
    ) -> PyResult<Self> {
        let seed = match seed {
            None => 0,
            Some(s) => s
                .extract::<u64>()
                .map_err(|_| invalid("seed must be an integer in [0, 2**64)"))?,
        };
        let config = BanditConfig {
            policy: policy.parse().map_err(to_pyerr)?,
            seed,
            discount,
            prior_alpha,
            prior_beta,
            ucb_c,
            epsilon,
            epsilon_decay,
            epsilon_min,
        };
        let core = CoreBandit::new(config, arms).map_err(to_pyerr)?;
        Ok(Self::wrap(py, core))
    }

    /// The policy name.
    #[getter]
    fn policy(&self) -> &'static str {
        self.lock().policy().name()
    }

    /// The arm names, in order.
    #[getter]
    fn arms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.arm_names.iter().map(|a| a.bind(py)))
    }

    /// Choose an arm for `context`.
    #[pyo3(signature = (context = ""))]
    fn select(&self, py: Python<'_>, context: &str) -> Py<PyString> {
        let i = self.lock().select(context);
        self.name(py, i)
    }

    /// Choose an arm for each context (GIL released; same draws as a loop of `select`).
    fn select_many<'py>(
        &self,
        py: Python<'py>,
        contexts: Vec<PyBackedStr>,
    ) -> PyResult<Bound<'py, PyList>> {
        let picks = py.detach(|| self.lock().select_many(&contexts));
        PyList::new(py, picks.into_iter().map(|i| self.arm_names[i].bind(py)))
    }

    /// Record `reward` for `arm` played in `context`.
    fn update(&self, context: &str, arm: &str, reward: f64) -> PyResult<()> {
        self.lock().update(context, arm, reward).map_err(to_pyerr)
    }

    /// Record many updates (GIL released); nothing is recorded unless all are valid.
    fn update_many(
        &self,
        py: Python<'_>,
        contexts: Vec<PyBackedStr>,
        arms: Vec<PyBackedStr>,
        rewards: Vec<f64>,
    ) -> PyResult<()> {
        py.detach(|| self.lock().update_many(&contexts, &arms, &rewards))
            .map_err(to_pyerr)
    }

    /// Per-arm statistics of `context`: `{arm: {"pulls", "mean_reward", "mean", ...}}`.
    #[pyo3(signature = (context = ""))]
    fn arm_stats<'py>(&self, py: Python<'py>, context: &str) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.lock().arm_stats(context);
        let out = PyDict::new(py);
        for s in stats {
            let d = PyDict::new(py);
            d.set_item("pulls", s.pulls)?;
            d.set_item("mean_reward", s.mean_reward)?;
            d.set_item("mean", s.mean)?;
            for (key, value) in s.params {
                d.set_item(key, value)?;
            }
            out.set_item(s.arm, d)?;
        }
        Ok(out)
    }

    /// The arm with the highest estimated mean in `context`.
    #[pyo3(signature = (context = ""))]
    fn best_arm(&self, py: Python<'_>, context: &str) -> Py<PyString> {
        let i = self.lock().best_arm(context);
        self.name(py, i)
    }

    /// Contexts that have received at least one update, sorted.
    fn contexts(&self) -> Vec<String> {
        let core = self.lock();
        core.contexts().into_iter().map(str::to_owned).collect()
    }

    /// The full state as JSON (format-versioned, includes the RNG position).
    fn to_json(&self, py: Python<'_>) -> String {
        py.detach(|| self.lock().to_json())
    }

    /// The full state in a compact, checksummed binary form.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = py.detach(|| self.lock().to_bytes());
        PyBytes::new(py, &bytes)
    }

    /// Restore a bandit from `to_json` output; raises `StateError` if it is invalid.
    #[staticmethod]
    fn from_json(py: Python<'_>, state: &str) -> PyResult<Self> {
        let core = py
            .detach(|| CoreBandit::from_json(state))
            .map_err(to_pyerr)?;
        Ok(Self::wrap(py, core))
    }

    /// Restore a bandit from `to_bytes` output; raises `StateError` if it is invalid.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, state: &[u8]) -> PyResult<Self> {
        let core = py
            .detach(|| CoreBandit::from_bytes(state))
            .map_err(to_pyerr)?;
        Ok(Self::wrap(py, core))
    }

    /// Pickle through the binary state.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let py = slf.py();
        let restore = py.get_type::<Self>().getattr("from_bytes")?;
        Ok((restore, (slf.get().to_bytes(py),)))
    }

    fn __repr__(&self) -> String {
        let core = self.lock();
        format!(
            "Bandit(policy={:?}, arms={:?}, contexts={})",
            core.policy().name(),
            core.arms(),
            core.contexts().len()
        )
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Bandit>()
}
