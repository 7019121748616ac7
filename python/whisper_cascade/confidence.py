"""Confidence aggregation of whisper.cpp token results (native core).

Collect one transcription result into :class:`TokenArrays` (``TokenArrays.builder()`` lets a
backend append tokens and segments while it reads whisper.cpp), then call :func:`aggregate`.
Special and timestamp tokens never count. Metric definitions are in ``rust/confidence/mod.rs``;
in short: token probability statistics per segment and overall, openai-whisper's compression
ratio, a back-to-back word repetition score in [0, 1], and overlap with detected speech.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade import _native
from whisper_cascade.errors import InvalidArgumentError

FLAG_SPECIAL = 1
"""Flag bit of special tokens (sot, eot, no_timestamps, language, task...)."""
FLAG_TIMESTAMP = 2
"""Flag bit of timestamp tokens."""
DEFAULT_LOW_THRESHOLD = 0.7


@dataclass(frozen=True)
class TokenArrays:
    """One transcription result as parallel per-token arrays plus per-segment data.

    Times are whisper.cpp centiseconds, -1 when unknown. Numeric arrays must have exactly the
    dtypes of the annotations and be C-contiguous (the native core reads them without copying).
    """

    token_ids: npt.NDArray[np.int32]
    probs: npt.NDArray[np.float32]
    logprobs: npt.NDArray[np.float32]
    t0: npt.NDArray[np.int64]
    t1: npt.NDArray[np.int64]
    segment_index: npt.NDArray[np.int32]
    flags: npt.NDArray[np.uint8]
    token_bytes: list[bytes]
    segment_t0: npt.NDArray[np.int64]
    segment_t1: npt.NDArray[np.int64]
    segment_texts: list[str]

    @property
    def n_tokens(self) -> int:
        """Number of tokens, special and timestamp tokens included."""
        return len(self.token_ids)

    @classmethod
    def from_lists(
        cls,
        *,
        token_ids: Sequence[int],
        probs: Sequence[float],
        logprobs: Sequence[float],
        t0: Sequence[int],
        t1: Sequence[int],
        segment_index: Sequence[int],
        flags: Sequence[int],
        token_bytes: Sequence[bytes],
        segment_t0: Sequence[int],
        segment_t1: Sequence[int],
        segment_texts: Sequence[str],
    ) -> TokenArrays:
        """Build from plain Python sequences, converting to the required dtypes."""
        return cls(
            token_ids=np.ascontiguousarray(token_ids, dtype=np.int32),
            probs=np.ascontiguousarray(probs, dtype=np.float32),
            logprobs=np.ascontiguousarray(logprobs, dtype=np.float32),
            t0=np.ascontiguousarray(t0, dtype=np.int64),
            t1=np.ascontiguousarray(t1, dtype=np.int64),
            segment_index=np.ascontiguousarray(segment_index, dtype=np.int32),
            flags=np.ascontiguousarray(flags, dtype=np.uint8),
            token_bytes=list(token_bytes),
            segment_t0=np.ascontiguousarray(segment_t0, dtype=np.int64),
            segment_t1=np.ascontiguousarray(segment_t1, dtype=np.int64),
            segment_texts=list(segment_texts),
        )

    @staticmethod
    def builder() -> TokenArraysBuilder:
        """An empty :class:`TokenArraysBuilder`."""
        return TokenArraysBuilder()


class TokenArraysBuilder:
    """Accumulates segments and their tokens in reading order; ``build()`` makes the arrays."""

    _TOKEN_FIELDS = ("token_ids", "probs", "logprobs", "t0", "t1", "segment_index", "flags")

    def __init__(self) -> None:
        self._tokens: dict[str, list[Any]] = {name: [] for name in self._TOKEN_FIELDS}
        self._pieces: list[bytes] = []
        self._segment_t0: list[int] = []
        self._segment_t1: list[int] = []
        self._segment_texts: list[str] = []

    def add_segment(self, t0: int, t1: int, text: str) -> int:
        """Start a segment (times in centiseconds, -1 if unknown); returns its index."""
        self._segment_t0.append(t0)
        self._segment_t1.append(t1)
        self._segment_texts.append(text)
        return len(self._segment_texts) - 1

    def add_token(
        self,
        token_id: int,
        piece: bytes,
        prob: float,
        logprob: float,
        t0: int = -1,
        t1: int = -1,
        flags: int = 0,
    ) -> None:
        """Append a token (``piece``: its raw BPE bytes) to the most recently added segment."""
        if not self._segment_texts:
            raise InvalidArgumentError("add_segment() must be called before add_token()")
        values = (token_id, prob, logprob, t0, t1, len(self._segment_texts) - 1, flags)
        for name, value in zip(self._TOKEN_FIELDS, values, strict=True):
            self._tokens[name].append(value)
        self._pieces.append(bytes(piece))

    def build(self) -> TokenArrays:
        """The collected result as :class:`TokenArrays`."""
        return TokenArrays.from_lists(
            **self._tokens,
            token_bytes=self._pieces,
            segment_t0=self._segment_t0,
            segment_t1=self._segment_t1,
            segment_texts=self._segment_texts,
        )


@dataclass(frozen=True)
class ConfidenceMetrics:
    """Metrics of one segment or of the whole result (see the module docstring)."""

    n_tokens: int
    mean: float
    geometric_mean: float
    min: float
    std: float
    consistency: float
    low_confidence_ratio: float
    avg_logprob: float
    sequence_confidence: float
    compression_ratio: float
    repetition_score: float
    speech_coverage: float
    speech_in_segments: float


@dataclass(frozen=True)
class WordInfo:
    """A word merged from sub-word tokens; times in seconds, ``None`` when unknown."""

    word: str
    start: float | None
    end: float | None
    probability: float
    segment: int


_METRIC_NAMES = tuple(f.name for f in fields(ConfidenceMetrics))


class ConfidenceReport:
    """Result of :func:`aggregate`: ``overall``, ``segments`` and ``words``.

    Built from the native core's columns; the dataclass objects are made on first access
    (a transcript can have thousands of words), and :meth:`to_dict` reads the columns
    directly. Immutable, compares and hashes by value.
    """

    __slots__ = ("_columns", "_overall", "_segments", "_words")

    def __init__(
        self,
        overall: ConfidenceMetrics,
        segments: Sequence[ConfidenceMetrics],
        words: Sequence[WordInfo],
    ) -> None:
        self._columns: dict[str, Any] | None
        self._overall: ConfidenceMetrics | None
        self._segments: tuple[ConfidenceMetrics, ...] | None
        self._words: tuple[WordInfo, ...] | None
        _set = object.__setattr__
        _set(self, "_columns", None)
        _set(self, "_overall", overall)
        _set(self, "_segments", tuple(segments))
        _set(self, "_words", tuple(words))

    @classmethod
    def _from_columns(cls, columns: dict[str, Any]) -> ConfidenceReport:
        if tuple(columns["metric_names"]) != _METRIC_NAMES:
            raise InvalidArgumentError(f"unexpected metric columns {columns['metric_names']}")
        report = cls.__new__(cls)
        for name in cls.__slots__:
            object.__setattr__(report, name, None)
        object.__setattr__(report, "_columns", columns)
        return report

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ConfidenceReport is immutable (cannot set {name!r})")

    @property
    def overall(self) -> ConfidenceMetrics:
        """Metrics over the whole result."""
        if self._overall is None:
            object.__setattr__(self, "_overall", _metrics(self._cols["overall"].tolist()))
        assert self._overall is not None
        return self._overall

    @property
    def segments(self) -> tuple[ConfidenceMetrics, ...]:
        """Metrics of each segment, in order."""
        if self._segments is None:
            rows = self._cols["segments"].tolist()
            object.__setattr__(self, "_segments", tuple(_metrics(row) for row in rows))
        assert self._segments is not None
        return self._segments

    @property
    def words(self) -> tuple[WordInfo, ...]:
        """The tokens merged into words, in order."""
        if self._words is None:
            object.__setattr__(self, "_words", tuple(WordInfo(**w) for w in self._word_dicts()))
        assert self._words is not None
        return self._words

    @property
    def _cols(self) -> dict[str, Any]:
        assert self._columns is not None  # only unset fields are read from columns
        return self._columns

    def _word_dicts(self) -> list[dict[str, Any]]:
        if self._columns is None:
            return [asdict(w) for w in self.words]
        c = self._columns
        text: str = c["word_text"]
        offsets = c["word_offsets"].tolist()
        starts = [None if v != v else v for v in c["word_start"].tolist()]  # NaN: unknown
        ends = [None if v != v else v for v in c["word_end"].tolist()]
        return [
            {"word": text[a:b], "start": s, "end": e, "probability": p, "segment": g}
            for a, b, s, e, p, g in zip(
                offsets[:-1],
                offsets[1:],
                starts,
                ends,
                c["word_probability"].tolist(),
                c["word_segment"].tolist(),
                strict=True,
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (same shape as the native result)."""
        if self._columns is None:
            return {
                "overall": asdict(self.overall),
                "segments": [asdict(m) for m in self.segments],
                "words": [asdict(w) for w in self.words],
            }
        c = self._columns
        return {
            "overall": _metrics_dict(c["overall"].tolist()),
            "segments": [_metrics_dict(row) for row in c["segments"].tolist()],
            "words": self._word_dicts(),
        }

    def _key(self) -> tuple[object, ...]:
        return (self.overall, self.segments, self.words)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfidenceReport):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"ConfidenceReport(overall={self.overall!r}, segments={self.segments!r}, "
            f"words={self.words!r})"
        )


def _metrics_dict(row: list[float]) -> dict[str, Any]:
    out = dict(zip(_METRIC_NAMES, row, strict=True))
    out["n_tokens"] = int(row[0])
    return out


def _metrics(row: list[float]) -> ConfidenceMetrics:
    return ConfidenceMetrics(**_metrics_dict(row))


def aggregate(
    tokens: TokenArrays,
    speech_segments: Iterable[tuple[float, float]] | None = None,
    low_threshold: float = DEFAULT_LOW_THRESHOLD,
) -> ConfidenceReport:
    """Aggregate token confidences per segment and overall, and merge tokens into words.

    ``speech_segments`` are (start, end) seconds from a speech-activity detector; ``None``
    means no detector ran (speech metrics are then 1.0). Tokens with probability below
    ``low_threshold`` (in [0, 1]) count as low-confidence. Raises ``InvalidArgumentError`` on
    inconsistent or non-finite input or arrays of the wrong dtype.
    """
    speech = None if speech_segments is None else [(float(a), float(b)) for a, b in speech_segments]
    columns: dict[str, Any] = _native.aggregate_confidence_columns(
        tokens.token_ids,
        tokens.probs,
        tokens.logprobs,
        tokens.t0,
        tokens.t1,
        tokens.segment_index,
        tokens.flags,
        tokens.token_bytes,
        tokens.segment_t0,
        tokens.segment_t1,
        tokens.segment_texts,
        speech,
        float(low_threshold),
    )
    return ConfidenceReport._from_columns(columns)


__all__ = [
    "DEFAULT_LOW_THRESHOLD",
    "FLAG_SPECIAL",
    "FLAG_TIMESTAMP",
    "ConfidenceMetrics",
    "ConfidenceReport",
    "TokenArrays",
    "TokenArraysBuilder",
    "WordInfo",
    "aggregate",
]
