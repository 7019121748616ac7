"""Evaluation over a manifest: word error rate, time, model usage and escalation.

WER is corpus-level: the edits (substitutions + deletions + insertions, counted by ``jiwer``)
summed over all files, divided by the total number of reference words, both sides normalised by
:func:`normalize_text` first. A file whose transcription raises a :class:`WhisperCascadeError`
counts as an error: its hypothesis is empty (every reference word a deletion) and the run goes on.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jiwer

from whisper_cascade.errors import InvalidArgumentError, ManifestError, WhisperCascadeError
from whisper_cascade.manifest import ManifestItem, read_manifest

if TYPE_CHECKING:
    from whisper_cascade.cascade import Cascade

SCORE_PASS = 0.8
NO_CONDITION = "unspecified"

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_DIGITS = re.compile(r"\d+")


def number_words(n: int) -> str:
    """English words for 0–999 as the domain grammar writes them: ``one hundred and twenty one``."""
    if not 0 <= n <= 999:
        raise InvalidArgumentError(f"number_words covers 0-999, got {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")


def _spell(match: re.Match[str]) -> str:
    digits = match.group()
    if len(digits) > 1 and digits.startswith("0"):  # "007": read digit by digit
        return " " + " ".join(_ONES[int(d)] for d in digits) + " "
    value = int(digits)
    return f" {number_words(value)} " if value <= 999 else f" {digits} "


def normalize_text(text: str) -> str:
    """Normalise a transcript for WER, deterministically.

    Lower-case (Unicode case folding, NFKC), every character that is not a letter, digit or
    whitespace becomes a space (so ``o'clock`` → ``o clock``, ``twenty-one`` → ``twenty one``),
    digit runs 0–999 are spelled out as the domain grammar does (``21`` → ``twenty one``,
    ``120`` → ``one hundred and twenty``, ``07`` → ``zero seven``; larger numbers stay digits),
    and whitespace is collapsed.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(c if c.isalnum() or c.isspace() else " " for c in folded)
    spelled = _DIGITS.sub(_spell, kept)
    return " ".join(spelled.split())


def word_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words) between two transcripts after :func:`normalize_text`."""
    ref = normalize_text(reference)
    hyp = normalize_text(hypothesis)
    if not ref:
        return len(hyp.split()), 0
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref.split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """One transcript's WER: :func:`word_edits` edits over reference words (an empty reference:
    0 when the hypothesis is empty too, else 1)."""
    return _rate(*word_edits(reference, hypothesis))


def _rate(edits: int, words: int) -> float:
    # A corpus without reference words: perfect when nothing was hypothesised, else 100%.
    if words == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / words


@dataclass(frozen=True)
class EvalItem:
    """The outcome for one manifest line."""

    audio: str
    reference: str
    hypothesis: str
    final_model: str | None
    time_s: float
    score: float | None
    condition: str | None
    escalation_count: int = 0
    error: str | None = None
    edits: int = 0
    ref_words: int = 0

    @property
    def wer(self) -> float:
        """This file's WER (see :func:`word_edits`)."""
        return _rate(self.edits, self.ref_words)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: audio, reference, hypothesis, final_model, time_s, score, condition,
        escalation_count, wer, error."""
        return {
            "audio": self.audio,
            "reference": self.reference,
            "hypothesis": self.hypothesis,
            "final_model": self.final_model,
            "time_s": self.time_s,
            "score": self.score,
            "condition": self.condition,
            "escalation_count": self.escalation_count,
            "wer": self.wer,
            "error": self.error,
        }


@dataclass(frozen=True)
class EvalReport:
    """Aggregates over a manifest run; ``items`` has one entry per manifest line."""

    items: tuple[EvalItem, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        """Number of files (error items included)."""
        return len(self.items)

    @property
    def wer(self) -> float:
        """Corpus-level WER, a fraction (errors count as empty hypotheses)."""
        return _rate(sum(i.edits for i in self.items), sum(i.ref_words for i in self.items))

    @property
    def total_time_s(self) -> float:
        """Sum of per-file times."""
        return math.fsum(i.time_s for i in self.items)

    @property
    def errors(self) -> tuple[EvalItem, ...]:
        """The items whose transcription failed."""
        return tuple(i for i in self.items if i.error is not None)

    @property
    def _ok(self) -> list[EvalItem]:
        return [i for i in self.items if i.error is None]

    @property
    def escalation_rate(self) -> float:
        """Share of successful files that escalated at least once (0 when none succeeded)."""
        ok = self._ok
        return sum(1 for i in ok if i.escalation_count > 0) / len(ok) if ok else 0.0

    @property
    def model_usage(self) -> dict[str, int]:
        """Final model → number of successful files it transcribed, most used first."""
        counts = Counter(i.final_model or "unknown" for i in self._ok)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def score_pass_rate(self) -> float | None:
        """Share of files with score ≥ 0.8, among those that have a score (None if none)."""
        scored = [i.score for i in self.items if i.score is not None]
        return sum(1 for s in scored if s >= SCORE_PASS) / len(scored) if scored else None

    @property
    def per_condition(self) -> dict[str, dict[str, Any]]:
        """Condition → ``{n, wer, errors}``; files without one are under ``unspecified``."""
        groups: dict[str, list[EvalItem]] = {}
        for item in self.items:
            groups.setdefault(item.condition or NO_CONDITION, []).append(item)
        return {
            name: {
                "n": len(group),
                "wer": _rate(sum(i.edits for i in group), sum(i.ref_words for i in group)),
                "errors": sum(1 for i in group if i.error is not None),
            }
            for name, group in sorted(groups.items())
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: n, wer, total_time_s, escalation_rate, model_usage, score_pass_rate,
        per_condition, errors (line-ordered ``{audio, error}``) and items."""
        return {
            "n": self.n,
            "wer": self.wer,
            "total_time_s": self.total_time_s,
            "escalation_rate": self.escalation_rate,
            "model_usage": self.model_usage,
            "score_pass_rate": self.score_pass_rate,
            "per_condition": self.per_condition,
            "errors": [{"audio": i.audio, "error": i.error} for i in self.errors],
            "items": [i.to_dict() for i in self.items],
        }

    def summary_text(self) -> str:
        """A readable multi-line summary for the terminal."""
        n = self.n
        per_file = self.total_time_s / n if n else 0.0
        passed = self.score_pass_rate
        lines = [
            f"files               {n}" + (f" ({len(self.errors)} failed)" if self.errors else ""),
            f"WER                 {100 * self.wer:.2f}%",
            f"total time          {self.total_time_s:.2f} s ({per_file:.3f} s per file)",
            f"escalation rate     {100 * self.escalation_rate:.1f}%",
            "score >= 0.8        " + ("n/a" if passed is None else f"{100 * passed:.1f}%"),
            "model usage",
        ]
        ok = max(len(self._ok), 1)
        lines += [
            f"  {name:<24} {count:>6}  {100 * count / ok:5.1f}%"
            for name, count in self.model_usage.items()
        ]
        lines.append(f"  {'condition':<24} {'files':>6}  {'WER':>6}")
        lines += [
            f"  {name:<24} {row['n']:>6}  {100 * row['wer']:5.1f}%"
            for name, row in self.per_condition.items()
        ]
        lines += [f"error: {i.audio}: {i.error}" for i in self.errors]
        return "\n".join(lines) + "\n"


TranscribeFn = Callable[[Path], Mapping[str, Any]]


def run_eval(
    manifest: str | os.PathLike[str] | Sequence[ManifestItem],
    transcribe_fn: TranscribeFn | Cascade,
    *,
    progress: bool = False,
) -> EvalReport:
    """Transcribe every manifest item with ``transcribe_fn`` and score the transcripts.

    ``transcribe_fn`` may be a :class:`~whisper_cascade.cascade.Cascade`: each item is then
    transcribed with its text as the ``reference``, so the WER reaches the store and the bandit.

    ``transcribe_fn(path)`` returns a mapping with ``text``, ``time_s`` (measured here when
    absent), and either ``model_selection`` (``final_model``, ``escalation_count``,
    ``decision_metrics.score``) or ``model`` with an optional ``score``. A
    :class:`WhisperCascadeError` makes that item an error; any other exception propagates.
    ``progress`` prints one line per file to stderr.
    """
    items = read_manifest(manifest) if isinstance(manifest, str | os.PathLike) else list(manifest)
    if not items:
        where = manifest if isinstance(manifest, str | os.PathLike) else "<items>"
        raise ManifestError(f"{where}: the manifest has no utterances")
    from whisper_cascade.cascade import Cascade

    def run(item: ManifestItem) -> Mapping[str, Any]:
        if isinstance(transcribe_fn, Cascade):
            return transcribe_fn.transcribe(item.path, reference=item.text).to_dict()
        return transcribe_fn(item.path)

    results = []
    for index, item in enumerate(items, start=1):
        started = time.perf_counter()
        try:
            outcome = run(item)
        except WhisperCascadeError as exc:
            elapsed = time.perf_counter() - started
            edits, words = word_edits(item.text, "")
            result = EvalItem(
                audio=item.audio,
                reference=item.text,
                hypothesis="",
                final_model=None,
                time_s=elapsed,
                score=None,
                condition=item.condition,
                error=f"{type(exc).__name__}: {exc}",
                edits=edits,
                ref_words=words,
            )
        else:
            result = _item_from(item, outcome, time.perf_counter() - started)
        results.append(result)
        if progress:
            status = "error" if result.error else f"{result.time_s:.2f} s"
            print(f"[{index}/{len(items)}] {item.audio} ({status})", file=sys.stderr, flush=True)
    return EvalReport(tuple(results))


def _item_from(item: ManifestItem, outcome: Mapping[str, Any], elapsed: float) -> EvalItem:
    where = f"transcription of {item.audio}"
    if not isinstance(outcome, Mapping):
        raise InvalidArgumentError(f"{where}: expected a mapping, got {type(outcome).__name__}")
    text = outcome.get("text")
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{where}: 'text' must be a string")
    time_s = _number(outcome.get("time_s", elapsed), f"{where}: time_s")
    selection = outcome.get("model_selection")
    if isinstance(selection, Mapping):
        model = selection.get("final_model")
        escalations = selection.get("escalation_count", 0)
        metrics = selection.get("decision_metrics") or {}
        score = metrics.get("score") if isinstance(metrics, Mapping) else None
    else:
        model, escalations, score = outcome.get("model"), 0, outcome.get("score")
    if model is not None and not isinstance(model, str):
        raise InvalidArgumentError(f"{where}: the model name must be a string")
    if isinstance(escalations, bool) or not isinstance(escalations, int) or escalations < 0:
        raise InvalidArgumentError(f"{where}: escalation_count must be an integer >= 0")
    edits, words = word_edits(item.text, text)
    return EvalItem(
        audio=item.audio,
        reference=item.text,
        hypothesis=text,
        final_model=model,
        time_s=time_s,
        score=None if score is None else _number(score, f"{where}: score"),
        condition=item.condition,
        escalation_count=escalations,
        edits=edits,
        ref_words=words,
    )


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"{what} must be a finite number, got {value!r}")
    if value < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {value}")
    return float(value)


__all__ = [
    "EvalItem",
    "EvalReport",
    "ManifestItem",
    "normalize_text",
    "number_words",
    "read_manifest",
    "run_eval",
    "word_edits",
    "word_error_rate",
]
