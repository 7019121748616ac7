"""Native confidence aggregation against the pure-Python reference and hand-made cases."""

from __future__ import annotations

import json
import random
import zlib
from typing import Any

import numpy as np
import pytest

import reference_confidence as ref
from whisper_cascade import _native
from whisper_cascade.confidence import (
    FLAG_SPECIAL,
    FLAG_TIMESTAMP,
    ConfidenceMetrics,
    ConfidenceReport,
    TokenArrays,
    WordInfo,
    aggregate,
)
from whisper_cascade.errors import InvalidArgumentError

METRICS = [f for f in ConfidenceMetrics.__dataclass_fields__ if f != "n_tokens"]

# Pieces as whisper's byte-level BPE produces them: leading spaces, bare continuations,
# punctuation, and multi-byte characters that the generator may split between tokens.
WORDS = ["the", "kitchen", "lights", "turn", "on", "plants", "water", "café", "naïve", "日本語"]
WORDS += ["€5", "don", "Ω", "🙂", "remind", "me", "tomorrow", "morning"]
PUNCT = [",", ".", "?", "!", " (", ")", " -", "'s", ' "', '"', " .", " ,"]


def random_result(rng: random.Random) -> tuple[TokenArrays, list[tuple[float, float]] | None]:
    b = TokenArrays.builder()
    n_segments = rng.choice([0, 1, 1, 3, 8])
    clock = rng.randrange(0, 500)
    for _ in range(n_segments):
        start, end = clock, clock + rng.randrange(0, 800)
        if rng.random() < 0.15:
            start, end = -1, -1
        clock = max(clock, end) + rng.randrange(0, 300)
        texts: list[str] = []
        pending: list[tuple[bytes, int]] = []
        pending.append((b"[_SOT_]", FLAG_SPECIAL))
        for k in range(rng.randrange(0, 14)):
            r = rng.random()
            if r < 0.1:
                pending.append((b"[_TT_%d]" % k, FLAG_TIMESTAMP))
                continue
            if r < 0.25:
                piece = rng.choice(PUNCT)
            else:
                word = rng.choice(WORDS)
                if rng.random() < 0.3:
                    word = rng.choice(texts[-1:] or [word]).strip() or word  # repetition
                piece = (" " if rng.random() < 0.8 else "") + word
            texts.append(piece)
            raw = piece.encode()
            cut = rng.randrange(0, len(raw) + 1) if rng.random() < 0.4 else len(raw)
            for part in (raw[:cut], raw[cut:]):
                if part:
                    pending.append((part, 0))
        pending.append((b"[_EOT_]", FLAG_SPECIAL))
        b.add_segment(start, end, "".join(texts) + rng.choice(["", " ", "\n"]))
        for j, (piece, flag) in enumerate(pending):
            p = rng.choice([0.0, 1.0, rng.random(), rng.random(), rng.random()])
            lp = float(np.log(np.float32(max(p, 1e-9))))
            tt0 = -1 if rng.random() < 0.1 else max(start, 0) + j
            tt1 = -1 if rng.random() < 0.1 else max(start, 0) + j + 1
            b.add_token(rng.randrange(51865), piece, p, lp, tt0, tt1, flag)
    speech: list[tuple[float, float]] | None = None
    r = rng.random()
    if r < 0.6:
        speech = []
        for _ in range(rng.randrange(0, 6)):
            a = rng.uniform(0, clock / 100.0 + 1)
            speech.append((a, a + rng.uniform(0, 3)))
    return b.build(), speech


def reference(tokens: TokenArrays, speech: Any = None, low: float = 0.7) -> dict[str, Any]:
    return ref.aggregate(
        tokens.token_ids.tolist(),
        tokens.probs.tolist(),
        tokens.logprobs.tolist(),
        tokens.t0.tolist(),
        tokens.t1.tolist(),
        tokens.segment_index.tolist(),
        tokens.flags.tolist(),
        tokens.token_bytes,
        tokens.segment_t0.tolist(),
        tokens.segment_t1.tolist(),
        tokens.segment_texts,
        speech,
        low,
    )


def assert_metrics_equal(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert got["n_tokens"] == want["n_tokens"], where
    for name in METRICS:
        assert got[name] == pytest.approx(want[name], abs=1e-6), f"{where}: {name}"


def assert_reports_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert_metrics_equal(got["overall"], want["overall"], "overall")
    assert len(got["segments"]) == len(want["segments"])
    for i, (g, w) in enumerate(zip(got["segments"], want["segments"], strict=True)):
        assert_metrics_equal(g, w, f"segment {i}")
    assert [w["word"] for w in got["words"]] == [w["word"] for w in want["words"]]
    for g, w in zip(got["words"], want["words"], strict=True):
        assert (g["start"], g["end"], g["segment"]) == (w["start"], w["end"], w["segment"])
        assert g["probability"] == pytest.approx(w["probability"], abs=1e-6)


@pytest.mark.parametrize("seed", range(300))
def test_matches_reference_on_random_results(seed: int) -> None:
    rng = random.Random(seed)
    tokens, speech = random_result(rng)
    low = rng.choice([0.7, 0.5, 0.0, 1.0])
    report = aggregate(tokens, speech, low)
    assert_reports_equal(report.to_dict(), reference(tokens, speech, low))
    for value in json.loads(json.dumps(report.to_dict()))["overall"].values():
        assert np.isfinite(value)


def test_empty_result_is_well_defined() -> None:
    empty = TokenArrays.builder().build()
    report = aggregate(empty, [(0.0, 1.0)])
    assert report.overall.n_tokens == 0
    assert all(getattr(report.overall, m) == 0.0 for m in METRICS[:-2])
    assert (report.overall.speech_coverage, report.overall.speech_in_segments) == (0.0, 1.0)
    assert report.segments == () and report.words == ()
    assert_reports_equal(report.to_dict(), reference(empty, [(0.0, 1.0)]))


def test_single_token_and_specials_only() -> None:
    b = TokenArrays.builder()
    b.add_segment(0, 100, " Yes")
    b.add_token(50258, b"[_SOT_]", 0.9, -0.1, flags=FLAG_SPECIAL)
    b.add_token(3065, b" Yes", 0.6, -0.51, 0, 100)
    b.add_token(50364, b"[_TT_50]", 0.1, -2.3, 50, 50, flags=FLAG_TIMESTAMP)
    report = aggregate(b.build())
    m = report.overall
    assert (m.n_tokens, m.std, m.consistency, m.low_confidence_ratio) == (1, 0.0, 1.0, 1.0)
    assert m.mean == pytest.approx(0.6) and m.avg_logprob == pytest.approx(-0.51)
    (word,) = report.words
    assert isinstance(word, WordInfo)
    assert (word.word, word.start, word.end, word.segment) == ("Yes", 0.0, 1.0, 0)
    assert word.probability == pytest.approx(0.6)
    assert isinstance(report, ConfidenceReport)


def test_utf8_split_across_tokens_is_merged_before_decoding() -> None:
    raw = " 日本".encode()
    b = TokenArrays.builder()
    b.add_segment(0, 200, " 日本")
    for i in range(len(raw)):  # one byte per token
        b.add_token(i, raw[i : i + 1], 0.5, -0.7, i, i + 1)
    words = aggregate(b.build()).words
    assert [w.word for w in words] == ["日本"]
    assert (words[0].start, words[0].end) == (0.0, len(raw) / 100.0)


def test_speech_metrics_flag_text_over_silence() -> None:
    b = TokenArrays.builder()
    b.add_segment(0, 300, " hello")
    b.add_token(1, b" hello", 0.9, -0.1, 0, 300)
    b.add_segment(1000, 1200, " Thanks for watching!")
    b.add_token(2, b" Thanks", 0.9, -0.1, 1000, 1200)
    tokens = b.build()
    report = aggregate(tokens, [(0.0, 3.0)])
    assert report.segments[0].speech_in_segments == 1.0
    assert report.segments[1].speech_in_segments == 0.0
    assert report.overall.speech_coverage == 1.0
    assert report.overall.speech_in_segments == pytest.approx(3.0 / 5.0)
    assert aggregate(tokens, []).overall.speech_in_segments == 0.0
    assert aggregate(tokens).overall.speech_in_segments == 1.0


def _random_text(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(rng.choice("ab c") for _ in range(rng.randrange(1, 3000)))
    if kind == 1:
        phrase = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 6)))
        return " ".join([phrase] * rng.randrange(1, 200))
    if kind == 2:
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(1, 800)))
    return " ".join(rng.choice(WORDS + PUNCT) for _ in range(rng.randrange(1, 1500)))


def test_compression_ratio_is_identical_to_python_zlib() -> None:
    rng = random.Random(7)
    texts = [_random_text(rng).strip() for _ in range(600)]
    texts += ["", "a", "the the the the", ("turn on the kitchen lights " * 40).strip()]
    # Compresses to more than the native 4 KiB scratch buffer: several Z_FINISH rounds.
    texts.append("".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(20000)))
    n = len(texts)
    ints = np.full(n, -1, dtype=np.int64)
    empty_i32 = np.zeros(0, dtype=np.int32)
    empty_i64 = np.zeros(0, dtype=np.int64)
    raw = _native.aggregate_confidence(
        empty_i32,
        np.zeros(0, dtype=np.float32),
        np.zeros(0, dtype=np.float32),
        empty_i64,
        empty_i64,
        empty_i32,
        np.zeros(0, dtype=np.uint8),
        [],
        ints,
        ints,
        texts,
    )
    for text, seg in zip(texts, raw["segments"], strict=True):
        data = text.encode()
        assert seg["compression_ratio"] == len(data) / len(zlib.compress(data)), text[:40]


def test_repetition_score_flags_loops_not_normal_sentences() -> None:
    normal = [
        "turn on the kitchen lights",
        "remind me to water the plants tomorrow morning",
        "set the thermostat to twenty one degrees in the living room",
        "what is on my calendar for the day after tomorrow",
        "play some music in the bedroom and turn off the lights in the hall",
    ]
    loops = [
        "the the the the",
        "thank you thank you thank you",
        "turn on the kitchen lights turn on the kitchen lights turn on the kitchen lights",
        "I'm going to go. I'm going to go. I'm going to go. I'm going to go.",
    ]
    b = TokenArrays.builder()
    for text in normal + loops:
        b.add_segment(-1, -1, text)
    segments = aggregate(b.build()).segments
    assert [s.repetition_score for s in segments[: len(normal)]] == [0.0] * len(normal)
    for s in segments[len(normal) :]:
        assert s.repetition_score >= 0.6
    assert segments[len(normal)].repetition_score == 0.75


def test_builder_requires_a_segment_first() -> None:
    with pytest.raises(InvalidArgumentError):
        TokenArrays.builder().add_token(1, b" a", 0.5, -0.7)


def _valid() -> TokenArrays:
    b = TokenArrays.builder()
    b.add_segment(0, 100, " a b")
    b.add_token(1, b" a", 0.5, -0.7, 0, 50)
    b.add_token(2, b" b", 0.5, -0.7, 50, 100)
    return b.build()


def _call(tokens: TokenArrays, **overrides: Any) -> dict[str, Any]:
    args = {k: getattr(tokens, k) for k in TokenArrays.__dataclass_fields__} | overrides
    return _native.aggregate_confidence(**args)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"probs": np.array([0.5, np.nan], dtype=np.float32)}, r"probs\[1\]"),
        ({"probs": np.array([0.5, 1.5], dtype=np.float32)}, r"probs\[1\]"),
        ({"probs": np.array([-0.1, 0.5], dtype=np.float32)}, r"probs\[0\]"),
        ({"logprobs": np.array([-np.inf, 0.0], dtype=np.float32)}, r"logprobs\[0\]"),
        ({"t1": np.array([1], dtype=np.int64)}, "t1 has 1"),
        ({"token_bytes": [b" a"]}, "token_bytes has 1"),
        ({"segment_index": np.array([0, 1], dtype=np.int32)}, r"segment_index\[1\]"),
        ({"segment_texts": [" a b", " c"]}, "segment_texts"),
        ({"probs": np.array([0.5, 0.5])}, "float32, got a 1-D array of dtype float64"),
        ({"t0": [0, 50]}, "int64, got list"),
        ({"flags": np.zeros((2, 1), dtype=np.uint8)}, "uint8"),
        ({"probs": np.zeros(4, dtype=np.float32)[::2]}, "C-contiguous"),
        ({"token_bytes": ["a", b"b"]}, r"token_bytes\[0\] must be bytes"),
        ({"segment_texts": [b"x"]}, r"segment_texts\[0\] must be str"),
        ({"speech_segments": [(2.0, 1.0)]}, r"speech_segments\[0\]"),
        ({"speech_segments": [(0.0, float("nan"))]}, r"speech_segments\[0\]"),
        ({"low_threshold": 1.5}, "low_threshold"),
    ],
)
def test_invalid_input_raises_typed_error(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        _call(_valid(), **overrides)


def test_wrapper_accepts_speech_as_any_pairs_and_default_threshold() -> None:
    tokens = _valid()
    report = aggregate(tokens, np.array([[0.0, 0.5]]))
    assert report.overall.speech_coverage == 1.0
    assert report.overall.speech_in_segments == pytest.approx(0.5)
    assert report.overall.low_confidence_ratio == 1.0
    assert aggregate(tokens, low_threshold=0.5).overall.low_confidence_ratio == 0.0
    assert tokens.n_tokens == 2
    assert _native.CONFIDENCE_FLAG_SPECIAL == FLAG_SPECIAL
    assert _native.CONFIDENCE_FLAG_TIMESTAMP == FLAG_TIMESTAMP


def test_lazy_report_equals_one_built_from_objects() -> None:
    tokens, speech = random_result(random.Random(11))
    lazy = aggregate(tokens, speech)
    native = _call(tokens, speech_segments=speech)
    assert lazy.to_dict() == native  # columns give the dicts of the native result exactly
    built = ConfidenceReport(lazy.overall, list(lazy.segments), list(lazy.words))
    fresh = aggregate(tokens, speech)
    assert built == fresh and hash(built) == hash(fresh)
    assert built.to_dict() == native
    assert "ConfidenceReport(overall=" in repr(fresh)
    assert fresh != "report"
    with pytest.raises(AttributeError):
        fresh.overall = lazy.overall  # type: ignore[misc]


def test_columns_hold_words_joined_with_code_point_offsets() -> None:
    b = TokenArrays.builder()
    b.add_segment(0, 100, " naïve café")
    b.add_token(1, " naïve".encode(), 0.5, -0.7, 0, 50)
    b.add_token(2, " café".encode(), 0.25, -1.4)
    cols = _native.aggregate_confidence_columns(
        *(getattr(b.build(), k) for k in TokenArrays.__dataclass_fields__)
    )
    assert cols["word_text"] == "naïvecafé"
    assert cols["word_offsets"].tolist() == [0, 5, 9]
    assert np.isnan(cols["word_start"][1]) and cols["segments"].shape == (
        1,
        len(cols["metric_names"]),
    )
    words = aggregate(b.build()).words
    assert [(w.word, w.start, w.end) for w in words] == [("naïve", 0.0, 0.5), ("café", None, None)]
