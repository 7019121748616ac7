"""Multi-armed bandits for choosing between models (or anything else) per content class.

:class:`Bandit` is implemented in Rust. Arms and contexts are strings; each context learns
separately and is created on its first update. Policies (``POLICIES``):

* ``"thompson"``: Beta-Bernoulli Thompson sampling; rewards in [0, 1] update fractionally.
* ``"gaussian_thompson"``: Thompson sampling with a Normal-Inverse-Gamma posterior (unknown
  mean and variance; prior mean 0, kappa 1, shape ``prior_alpha``, scale ``prior_beta``);
  any finite reward within +-1e100.
* ``"ucb1"``: ``mean + ucb_c * sqrt(2 ln N / n)``, untried arms first; rewards in [0, 1].
* ``"epsilon_greedy"``: explores with ``max(epsilon_min, epsilon * epsilon_decay**t)``, ``t``
  the context's number of updates; any finite reward within +-1e100.

``discount`` < 1 (Thompson policies only) decays every arm of a context toward the prior before
each of its updates, so the bandit follows a best arm that changes over time. A bandit is
reproducible from its ``seed``; ``to_json``/``to_bytes`` save the RNG position too, so a
restored bandit continues the exact sequence. Bad input raises
:class:`~whisper_cascade.errors.InvalidArgumentError`, bad state
:class:`~whisper_cascade.errors.StateError`. One instance may be shared between threads.

:class:`ArmSelector` shows the model-agnostic use: it chooses among callables and turns a
measured quality and cost into a reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from whisper_cascade._native import Bandit
from whisper_cascade.errors import InvalidArgumentError

POLICIES: tuple[str, ...] = ("thompson", "gaussian_thompson", "ucb1", "epsilon_greedy")


class ArmSelector:
    """Choose among named callables (e.g. transcribers) by quality for the cost.

    ``record`` rewards an arm with ``clip(quality - cost_weight * cost / max_cost, 0, 1)``,
    ``max_cost`` being the largest of the declared ``costs``.
    """

    def __init__(
        self,
        arms: Mapping[str, Callable[..., Any]],
        costs: Mapping[str, float],
        policy: str = "thompson",
        seed: int = 0,
    ) -> None:
        if set(costs) != set(arms):
            raise InvalidArgumentError("costs must name exactly the arms")
        if not all(math.isfinite(c) and c >= 0 for c in costs.values()):
            raise InvalidArgumentError("costs must be finite and >= 0")
        self.arms = dict(arms)
        self._max_cost = max(costs.values(), default=0.0) or 1.0
        self.bandit = Bandit(policy, list(self.arms), seed=seed)

    def choose(self, context: str = "") -> str:
        """The arm to use for ``context``."""
        return self.bandit.select(context)

    def run(self, context: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        """Choose an arm and call it; returns ``(arm, result)``."""
        arm = self.choose(context)
        return arm, self.arms[arm](*args, **kwargs)

    def record(
        self, context: str, arm: str, quality: float, cost: float, cost_weight: float = 0.5
    ) -> float:
        """Learn from one outcome; returns the reward given to the bandit."""
        if not (math.isfinite(quality) and math.isfinite(cost) and math.isfinite(cost_weight)):
            raise InvalidArgumentError("quality, cost and cost_weight must be finite")
        reward = min(1.0, max(0.0, quality - cost_weight * cost / self._max_cost))
        self.bandit.update(context, arm, reward)
        return reward


__all__ = ["POLICIES", "ArmSelector", "Bandit"]
