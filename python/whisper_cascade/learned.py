"""The learned policy: escalation thresholds (global and per content class) fitted from feedback.

``whisper-cascade learn`` fits a :class:`LearnedPolicy` for a ladder and saves it in the store;
the preset name ``learned`` loads it (:func:`learned_preset`). Per-class thresholds apply to
audio of that class (see :mod:`whisper_cascade.content`); other audio uses the global ones.
Stored as JSON under the store key ``policy:<ladder>`` (the bandit-state table).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from whisper_cascade.errors import InvalidArgumentError, StateError
from whisper_cascade.presets import Preset, get_preset

if TYPE_CHECKING:
    from whisper_cascade.store import Store

__all__ = [
    "LEARNED_PRESET",
    "LearnedPolicy",
    "learned_preset",
    "load_policy",
    "policy_key",
    "save_policy",
]

LEARNED_PRESET = "learned"
SCHEMA_VERSION = 1


def _thresholds(raw: Mapping[str, Any], what: str) -> Mapping[str, float]:
    out: dict[str, float] = {}
    for model, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StateError(f"{what}: threshold of {model!r} is not a number: {value!r}")
        if not (math.isfinite(value) and 0.0 <= value <= 1.5):
            raise StateError(f"{what}: threshold of {model!r} out of [0, 1.5]: {value}")
        out[str(model)] = float(value)
    return MappingProxyType(out)


@dataclass(frozen=True)
class LearnedPolicy:
    """Thresholds fitted for one ladder; ``report`` holds the fit's own measurements."""

    ladder: str
    thresholds: Mapping[str, float]
    class_thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    base_preset: str = "balanced"
    n_items: int = 0
    fitted_at: float = field(default_factory=time.time)
    report: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", _thresholds(self.thresholds, "thresholds"))
        classes = {str(c): _thresholds(t, f"class {c!r}") for c, t in self.class_thresholds.items()}
        object.__setattr__(self, "class_thresholds", MappingProxyType(classes))

    def threshold_for(self, model: str, content_class: str | None = None) -> float | None:
        """The learned threshold for ``model`` (the class's own first), or None if not fitted."""
        if content_class is not None:
            per_class = self.class_thresholds.get(content_class, {})
            if model in per_class:
                return per_class[model]
        return self.thresholds.get(model)

    def to_json(self) -> str:
        """The JSON document saved in the store."""
        return json.dumps(
            {
                "version": SCHEMA_VERSION,
                "ladder": self.ladder,
                "base_preset": self.base_preset,
                "thresholds": dict(self.thresholds),
                "class_thresholds": {c: dict(t) for c, t in self.class_thresholds.items()},
                "n_items": self.n_items,
                "fitted_at": self.fitted_at,
                "report": dict(self.report),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> LearnedPolicy:
        """Parse :meth:`to_json` output; anything else raises StateError."""
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StateError(f"learned policy is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or raw.get("version") != SCHEMA_VERSION:
            raise StateError("learned policy: unsupported document (version must be 1)")
        try:
            return cls(
                ladder=str(raw["ladder"]),
                thresholds=dict(raw["thresholds"]),
                class_thresholds={str(k): dict(v) for k, v in raw["class_thresholds"].items()},
                base_preset=str(raw.get("base_preset", "balanced")),
                n_items=int(raw.get("n_items", 0)),
                fitted_at=float(raw.get("fitted_at", 0.0)),
                report=dict(raw.get("report", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(f"learned policy: malformed document: {exc}") from exc


def policy_key(ladder: str) -> str:
    """The store key of a ladder's learned policy."""
    return f"policy:{ladder}"


def save_policy(store: Store, policy: LearnedPolicy) -> None:
    """Save (replace) ``policy`` for its ladder."""
    store.save_bandit_state(policy_key(policy.ladder), policy.to_json().encode())


def load_policy(store: Store, ladder: str) -> LearnedPolicy | None:
    """The learned policy of ``ladder``, or None when none was fitted."""
    raw = store.load_bandit_state(policy_key(ladder))
    return None if raw is None else LearnedPolicy.from_json(raw)


def learned_preset(policy: LearnedPolicy | None, base: Preset | str | None = None) -> Preset:
    """The ``learned`` preset: ``base`` (default: the policy's base) with the learned thresholds.

    Without a policy this is an error: run ``whisper-cascade learn`` first.
    """
    if policy is None:
        raise InvalidArgumentError(
            "no learned policy for this ladder yet: add feedback "
            "(`whisper-cascade feedback add`) and run `whisper-cascade learn`"
        )
    start = get_preset(base if base is not None else policy.base_preset)
    return replace(
        start,
        name=LEARNED_PRESET,
        thresholds={**start.thresholds, **policy.thresholds},
        class_thresholds=policy.class_thresholds,
        ladder=policy.ladder,
        calibrated=True,
        note=f"learned from {policy.n_items} feedback items on ladder {policy.ladder!r}",
    )
