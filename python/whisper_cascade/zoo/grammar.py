"""The closed English domain: sentence sampling and a stable train / held-out split."""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from whisper_cascade.errors import InvalidArgumentError

_SLOT = re.compile(r"\{([a-z_]+)\}")
_SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class Grammar:
    """Templates whose ``{slots}`` expand (recursively) to random slot values."""

    templates: tuple[str, ...]
    slots: dict[str, tuple[str, ...]]
    speech: dict[str, Any] = field(default_factory=dict)
    heldout_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not self.templates:
            raise InvalidArgumentError("grammar has no templates")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise InvalidArgumentError("heldout_fraction must be in (0, 1)")
        for text in (*self.templates, *(v for vs in self.slots.values() for v in vs)):
            for name in _SLOT.findall(text):
                if not self.slots.get(name):
                    raise InvalidArgumentError(f"slot {{{name}}} is undefined or empty")
        for name in self.slots:
            self._max_words(f"{{{name}}}", ())  # rejects cycles

    @classmethod
    def from_dict(cls, data: dict[str, Any], heldout_fraction: float = 0.1) -> Grammar:
        """Build from the JSON structure of ``grammar.json``."""
        try:
            templates = tuple(str(t) for t in data["templates"])
            slots = {str(k): tuple(str(v) for v in vs) for k, vs in data["slots"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidArgumentError(f"malformed grammar: {exc!r}") from exc
        return cls(templates, slots, dict(data.get("speech", {})), heldout_fraction)

    def expand(self, text: str, rng: random.Random) -> str:
        """Replace every slot of ``text`` by a random value, recursively."""
        return _SLOT.sub(lambda m: self.expand(rng.choice(self.slots[m.group(1)]), rng), text)

    def sample(self, rng: random.Random, split: str | None = None) -> str:
        """A random sentence; with ``split`` only sentences of that split ("train"/"heldout")."""
        if split is not None and split not in _SPLITS:
            raise InvalidArgumentError(f"split must be one of {_SPLITS}, got {split!r}")
        for _ in range(10_000):
            sentence = " ".join(self.expand(rng.choice(self.templates), rng).split())
            if split is None or self.split_of(sentence) == split:
                return sentence
        raise InvalidArgumentError(f"could not sample a {split} sentence")  # pragma: no cover

    def sample_swapped(self, rng: random.Random, swap: float = 0.5) -> str:
        """A training sentence whose slots are, each with probability ``swap`` (at least one),
        filled with a value of another slot: "drive to emma", "call monday at home".

        Such sentences teach a model that a slot's word comes from the audio, not from which
        fillings the training sentences happened to pair with a template (the held-out split
        removes whole sentences, so a template with few fillings otherwise never shows its
        held-out ones). The result is always of the "train" split."""
        if not 0.0 <= swap <= 1.0:
            raise InvalidArgumentError(f"swap must be in [0, 1], got {swap}")
        names = sorted(self.slots)
        for _ in range(10_000):
            parts = _SLOT.split(rng.choice(self.templates))  # text, slot, text, slot, ..., text
            n_slots = len(parts) // 2
            if not n_slots or len(names) < 2:
                continue
            forced = rng.randrange(n_slots)
            for i in range(n_slots):
                name = parts[2 * i + 1]
                if i == forced or rng.random() < swap:
                    name = rng.choice([n for n in names if n != name])
                parts[2 * i + 1] = self.expand(rng.choice(self.slots[name]), rng)
            sentence = " ".join("".join(parts).split())
            if self.split_of(sentence) == "train":
                return sentence
        raise InvalidArgumentError("this grammar has no slots to swap")

    def split_of(self, sentence: str) -> str:
        """ "heldout" for a stable pseudo-random fraction of sentences, else "train"."""
        digest = hashlib.sha256(" ".join(sentence.split()).encode()).digest()
        value = int.from_bytes(digest[:8], "big") / 2.0**64
        return "heldout" if value < self.heldout_fraction else "train"

    def words(self) -> set[str]:
        """Every word any sentence can contain."""
        texts = (*self.templates, *(v for vs in self.slots.values() for v in vs))
        return {w for t in texts for w in _SLOT.sub(" ", t).split()}

    def max_words(self) -> int:
        """The number of words of the longest sentence."""
        return max(self._max_words(t, ()) for t in self.templates)

    def _max_words(self, text: str, stack: tuple[str, ...]) -> int:
        total = len(_SLOT.sub(" ", text).split())
        for name in _SLOT.findall(text):
            if name in stack:
                raise InvalidArgumentError(f"slot {{{name}}} refers to itself")
            total += max(self._max_words(v, (*stack, name)) for v in self.slots[name])
        return total

    def longest_sentence(self) -> str:
        """One sentence with the most characters (used to size the audio window)."""
        return max((self._longest(t) for t in self.templates), key=len)

    def _longest(self, text: str) -> str:
        return _SLOT.sub(
            lambda m: max((self._longest(v) for v in self.slots[m.group(1)]), key=len), text
        )


def load_grammar(path: str | Path | None = None, heldout_fraction: float = 0.1) -> Grammar:
    """The bundled domain grammar, or the grammar JSON at ``path``."""
    try:
        if path is None:
            raw = resources.files("whisper_cascade").joinpath("data/grammar.json").read_text()
        else:
            raw = Path(path).read_text(encoding="utf-8")
        data = json.loads(raw)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read grammar {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"grammar {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgumentError("grammar JSON must be an object")
    return Grammar.from_dict(data, heldout_fraction)
