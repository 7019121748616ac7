"""Learning where to start a ladder: a bandit per ladder, one context per content class.

:class:`StartSelector` chooses the starting rung for audio of a content class (see
:mod:`whisper_cascade.content`) with the Rust :class:`~whisper_cascade.bandit.Bandit`, and
learns from each finished transcription with the reward::

    clip(quality - cost_weight * cost_fraction, 0, 1)

``quality`` is the final score (or ``1 - WER`` when a reference is known), ``cost_fraction``
the relative cost the cascade spent divided by the largest rung's relative cost. With a store,
the state is loaded at construction and saved after every update under
``bandit:start:<ladder>``, so learning survives restarts and is shared by processes that
use the same store (the last writer wins).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from whisper_cascade.bandit import POLICIES, Bandit
from whisper_cascade.errors import InvalidArgumentError, StateError

if TYPE_CHECKING:
    from whisper_cascade.store import Store

__all__ = ["StartSelector", "start_key", "start_reward"]

log = logging.getLogger(__name__)


def start_key(ladder_name: str) -> str:
    """The store key of a ladder's start-selection bandit."""
    return f"bandit:start:{ladder_name}"


def start_reward(quality: float, cost_fraction: float, cost_weight: float = 0.5) -> float:
    """``clip(quality - cost_weight * cost_fraction, 0, 1)``."""
    values = (quality, cost_fraction, cost_weight)
    if not all(math.isfinite(v) for v in values):
        raise InvalidArgumentError(
            f"quality, cost_fraction and cost_weight must be finite: {values}"
        )
    return min(1.0, max(0.0, quality - cost_weight * cost_fraction))


class StartSelector:
    """Chooses a ladder's starting model per content class and learns from the outcome."""

    def __init__(
        self,
        ladder_name: str,
        model_names: Sequence[str],
        store: Store | None = None,
        policy: str = "thompson",
        discount: float = 0.99,
        cost_weight: float = 0.5,
        seed: int = 0,
    ) -> None:
        names = list(model_names)
        if not names or len(set(names)) != len(names):
            raise InvalidArgumentError(f"model_names must be distinct and non-empty: {names}")
        if policy not in POLICIES:
            raise InvalidArgumentError(f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
        if not (math.isfinite(cost_weight) and cost_weight >= 0):
            raise InvalidArgumentError(f"cost_weight must be finite and >= 0, got {cost_weight}")
        self.ladder_name = ladder_name
        self.model_names = names
        self.store = store
        self.cost_weight = cost_weight
        self.key = start_key(ladder_name)
        kwargs: dict[str, Any] = {"seed": seed}
        if policy in ("thompson", "gaussian_thompson"):
            kwargs["discount"] = discount
        self.bandit = self._load() or Bandit(policy, names, **kwargs)

    def _load(self) -> Bandit | None:
        if self.store is None:
            return None
        from whisper_cascade.store import StoreError

        try:
            raw = self.store.load_bandit_state(self.key)
            if raw is None:
                return None
            bandit = Bandit.from_bytes(raw)
        except (StoreError, StateError, OSError) as exc:
            log.warning(
                "start selector %s: starting fresh, saved state unusable: %s", self.key, exc
            )
            return None
        if bandit.arms != self.model_names:
            log.warning(
                "start selector %s: saved arms %s differ from the ladder's %s; starting fresh",
                self.key,
                bandit.arms,
                self.model_names,
            )
            return None
        return bandit

    def choose(self, content_class: str) -> str:
        """The model to start with for audio of ``content_class``."""
        return self.bandit.select(content_class)

    def update(
        self, content_class: str, start_model: str, quality: float, cost_fraction: float
    ) -> float:
        """Learn from one transcription that started at ``start_model``; returns the reward.

        The new state is saved in the store; a store failure is logged, never raised.
        """
        reward = start_reward(quality, cost_fraction, self.cost_weight)
        self.bandit.update(content_class, start_model, reward)
        self.save()
        return reward

    def save(self) -> None:
        """Save the state in the store (no-op without one; failures are logged)."""
        if self.store is None:
            return
        from whisper_cascade.store import StoreError

        try:
            self.store.save_bandit_state(self.key, self.bandit.to_bytes())
        except (StoreError, OSError) as exc:
            log.warning("start selector %s: state not saved: %s", self.key, exc)

    def stats(self, content_class: str) -> dict[str, dict[str, Any]]:
        """Per-model pulls and mean reward for ``content_class``."""
        return self.bandit.arm_stats(content_class)
