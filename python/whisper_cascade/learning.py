"""A cascade's learned parts: the ``learned`` preset per ladder and the start selectors
(chosen per content class, rewarded after each transcription).

Both are cached per ladder name; :meth:`LearningState.reload_policy` drops the cached
policies so the next use reads the store again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from whisper_cascade.content import content_class
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.features import AudioFeatures
from whisper_cascade.ladders import Ladder
from whisper_cascade.learned import LEARNED_PRESET, learned_preset, load_policy
from whisper_cascade.policy import preselect
from whisper_cascade.presets import Preset
from whisper_cascade.start_selector import StartSelector
from whisper_cascade.store import Store

__all__ = ["LearningState"]


class LearningState:
    """Learned presets and start selectors of one cascade; thread-safe."""

    def __init__(self, store: Store | None, presets: Mapping[str, Preset]) -> None:
        self.store = store
        self.presets = presets
        self._policies: dict[str, Preset] = {}
        self._selectors: dict[str, StartSelector] = {}
        self._lock = threading.Lock()

    def is_learned(self, preset: object) -> bool:
        """Whether ``preset`` names the learned preset (and no user preset shadows it)."""
        return isinstance(preset, str) and preset == LEARNED_PRESET and preset not in self.presets

    def preset(self, ladder_name: str) -> Preset:
        """The ``learned`` preset of ``ladder_name`` (InvalidArgumentError without a store or
        a fitted policy)."""
        with self._lock:
            cached = self._policies.get(ladder_name)
        if cached is not None:
            return cached
        if self.store is None:
            raise InvalidArgumentError(
                "the 'learned' preset reads its policy from the store: pass a store "
                "(CLI: drop --no-store, or give --db)"
            )
        built = learned_preset(load_policy(self.store, ladder_name))
        with self._lock:
            self._policies[ladder_name] = built
        return built

    def reload_policy(self) -> None:
        """Forget the cached learned presets."""
        with self._lock:
            self._policies.clear()

    def selector(self, ladder: Ladder) -> StartSelector:
        """The start selector of ``ladder`` (created, and its state loaded, on first use)."""
        with self._lock:
            selector = self._selectors.get(ladder.name)
            if selector is None:
                selector = StartSelector(ladder.name, list(ladder.names), store=self.store)
                self._selectors[ladder.name] = selector
            return selector

    def start(
        self, feats: AudioFeatures | None, rungs: Ladder, preset: Preset, bandit: bool
    ) -> tuple[int, str]:
        """The rung to start at and why: the preselect rules, or the bandit's choice
        (reason ``"bandit"``) except for no-speech audio, which starts at rung 0."""
        index, reason = preselect(feats, rungs.models, preset)
        if not bandit or reason == "no_speech":
            return index, reason
        name = self.selector(rungs).choose(content_class(feats))
        return list(rungs.names).index(name), "bandit"

    def reward(
        self,
        rungs: Ladder,
        cls: str,
        start: int,
        score: float,
        wer: float | None,
        spent: float,
    ) -> None:
        """Teach the start selector how starting at rung ``start`` went for content class
        ``cls``: quality is ``score`` (``1 - wer`` when a reference was given), cost the
        relative cost ``spent`` over the largest rung's."""
        largest = max(m.relative_cost for m in rungs.models)
        quality = score if wer is None else min(1.0, max(0.0, 1.0 - wer))
        self.selector(rungs).update(
            cls, rungs.models[start].name, quality, spent / max(largest, 1e-9)
        )
