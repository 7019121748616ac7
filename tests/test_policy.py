"""Decision matrix, presets, ladders, pre-selection, breakers and stitching: pure unit tests."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from whisper_cascade.breaker import AnalysisCache, BreakerBoard, CircuitBreaker, audio_hash
from whisper_cascade.confidence import TokenArrays
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.features import AudioFeatures
from whisper_cascade.ladders import Ladder, builtin_ladders, get_ladder, spec_for
from whisper_cascade.policy import Score, Weights, decide, preselect, rule_rung, score
from whisper_cascade.presets import OPENAI_LIMIT_METRICS, Preset, builtin_presets, get_preset
from whisper_cascade.stitch import shift_tokens, stitch_tokens, weak_spans
from whisper_cascade.transcriber import Segment, Transcription

GOOD = {
    "n_tokens": 30,
    "mean": 0.92,
    "consistency": 0.8,
    "speech_coverage": 0.95,
    "low_confidence_ratio": 0.05,
    "avg_logprob": -0.1,
    "compression_ratio": 1.4,
    "repetition_score": 0.0,
    "speech_in_segments": 0.95,
}


def feats(**kw: float) -> AudioFeatures:
    base = dict.fromkeys(
        [f for f in AudioFeatures.__dataclass_fields__ if f != "speech_segments"], 0.0
    )
    base.update(duration_s=5.0, speech_ratio=0.6, snr_db=30.0, complexity=0.2)
    base.update(kw)
    return AudioFeatures(speech_segments=((0.5, 4.5),), **base)


def test_good_transcript_scores_high_and_is_accepted() -> None:
    s = score(GOOD)
    assert 0.7 < s.value <= 1.0 and not s.hallucination_suspected
    assert decide(s, "micro-s", get_preset("balanced")).accept


@pytest.mark.parametrize(
    ("metric", "better", "worse"),
    [
        ("mean", 0.9, 0.5),
        ("consistency", 0.9, 0.2),
        ("speech_coverage", 1.0, 0.4),
        ("low_confidence_ratio", 0.0, 0.6),
        ("repetition_score", 0.0, 0.4),
        ("compression_ratio", 1.5, 2.8),
        ("avg_logprob", -0.2, -1.4),
        ("speech_in_segments", 1.0, 0.5),
        ("sequence_confidence", 0.9, 0.1),
    ],
)
def test_score_is_monotone_in_each_metric(metric: str, better: float, worse: float) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = {k: float(v) for k, v in GOOD.items()}
        for k in ("mean", "consistency", "speech_coverage", "speech_in_segments"):
            m[k] = float(rng.uniform(0.3, 1.0))
        hi = score({**m, metric: better}).value
        lo = score({**m, metric: worse}).value
        assert 0.0 <= lo <= hi <= 1.0
        w = Weights(sequence=2.0)
        assert score({**m, metric: worse}, None, w).value >= 0.0
        assert (
            score({**m, metric: worse}, None, w).value
            <= score({**m, metric: better}, None, w).value
        )


def test_sequence_weight_reads_the_whole_text_probability() -> None:
    """Only the sequence weight looks at sequence_confidence; without the metric (metrics
    stored before it existed) it is geometric_mean ** n_tokens."""
    short = {**GOOD, "n_tokens": 4, "geometric_mean": 0.9, "sequence_confidence": 0.9**4}
    long = {**short, "n_tokens": 40, "sequence_confidence": 0.9**40}
    assert score(short).value == score(long).value
    w = Weights(confidence=0.0, consistency=0.0, coverage=0.0, sequence=1.0)
    assert score(short, None, w).components["sequence"] == pytest.approx(0.9**4)
    assert score(long, None, w).value < score(short, None, w).value
    derived = {k: v for k, v in long.items() if k != "sequence_confidence"}
    assert score(derived, None, w).value == pytest.approx(score(long, None, w).value)
    with pytest.raises(InvalidArgumentError, match="sequence weights sum to 0"):
        Weights(confidence=0.0, consistency=0.0, coverage=0.0)


def test_confident_repetition_loop_is_flagged_and_escalated() -> None:
    loop = {**GOOD, "mean": 0.97, "repetition_score": 0.9, "compression_ratio": 4.0}
    s = score(loop)
    assert s.hallucination_suspected and {"repetition", "compression"} <= set(s.flags)
    d = decide(s, "micro-s", get_preset("fast").with_overrides(default_threshold=0.0))
    assert not d.accept and d.reason == "hallucination_suspected"
    off = get_preset("fast").with_overrides(hallucination_check=False, thresholds={})
    assert decide(s, "x", off, min_score=0.0).accept


def test_text_over_silence_flagged_from_our_speech_estimate() -> None:
    s = score({**GOOD, "speech_in_segments": 0.1})
    assert "text_over_silence" in s.flags
    silent = feats(speech_ratio=0.0)
    s2 = score(GOOD, silent)
    assert "text_over_silence" in s2.flags and s2.value < score(GOOD, feats()).value / 2


def test_empty_transcripts() -> None:
    empty = {**GOOD, "n_tokens": 0}
    assert score(empty, feats(speech_ratio=0.0)).value == 1.0
    assert score(empty, feats(speech_ratio=0.7)).value == 0.0
    assert score({**empty, "speech_coverage": 1.0}).value == 1.0


def test_bad_metrics_and_weights_raise() -> None:
    with pytest.raises(InvalidArgumentError):
        score({**GOOD, "mean": math.nan})
    with pytest.raises(InvalidArgumentError):
        score({**GOOD, "mean": "high"})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError):
        Weights(repetition_penalty=2.0)
    with pytest.raises(InvalidArgumentError):
        Weights(confidence=0, consistency=0, coverage=0)
    with pytest.raises(InvalidArgumentError):
        Weights().updated({"nope": 1.0})


def test_thresholds_and_decisions() -> None:
    p = get_preset("balanced")
    threshold = p.threshold_for("micro-s")  # calibrated: any value in [0, 1.01]
    s = Score(threshold - 0.01)
    assert 0 <= threshold <= 1.01
    assert p.threshold_for("small-q8_0") == p.threshold_for("small") == p.threshold_for("small.en")
    assert p.threshold_for("unknown") == p.default_threshold
    assert decide(s, "micro-s", p).reason == "score_below_threshold"
    assert decide(Score(threshold), "micro-s", p).reason == "accepted"
    assert decide(s, "micro-s", p, min_score=threshold - 0.02).reason == "accepted"
    fast, acc = get_preset("fast"), get_preset("accurate")
    assert fast.threshold_for("base") < p.threshold_for("base") < acc.threshold_for("base")
    # balanced's OpenAI threshold is the score of a transcript on openai-whisper's limits
    assert p.threshold_for("base") == pytest.approx(score(OPENAI_LIMIT_METRICS).value, abs=1e-3)
    assert all("OpenAI thresholds" in pr.note for pr in builtin_presets().values())
    with pytest.raises(InvalidArgumentError, match="unknown preset"):
        get_preset("nope")
    with pytest.raises(InvalidArgumentError):
        Preset("x", thresholds={"a": math.inf})
    with pytest.raises(InvalidArgumentError):
        Preset("")


@dataclass
class Def:
    name: str
    base: str | None = None
    ladder: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float | None = None
    model_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    keep_best: bool | None = None
    preselect: bool | None = None
    never_skip: tuple[str, ...] | None = None


def test_per_model_weights_and_their_precedence() -> None:
    own = Weights(consistency=1.2, low_confidence_penalty=0.3)
    base = Preset("b", weights=Weights(), model_weights={"micro-xs": own})
    assert base.weights_for("micro-xs") == own and base.weights_for("micro-xs-q8_0") == own
    assert base.weights_for("micro-s") == Weights()
    with pytest.raises(InvalidArgumentError, match="must be Weights"):
        Preset("x", model_weights={"a": {"consistency": 1.0}})  # type: ignore[dict-item]
    # A user's weights win over fitted per-model ones; their own per-model weights win last.
    user = Preset.from_def(
        Def("u", weights={"coverage": 0.5}, model_weights={"tiny": {"consistency": 0.0}}),
        {"balanced": base},
    )
    assert user.weights_for("micro-xs") == own.updated({"coverage": 0.5})
    assert user.weights_for("tiny") == Weights(coverage=0.5, consistency=0.0)
    assert user.weights_for("base") == Weights(coverage=0.5)
    assert user.model_weights["tiny"].coverage == 0.5


def test_preset_from_config_definition() -> None:
    p = Preset.from_def(
        Def("mine", "accurate", "openai", {"repetition_penalty": 1.0}, {"tiny": 0.9}, 0.5)
    )
    assert p.name == "mine" and p.ladder == "openai" and p.weights.repetition_penalty == 1.0
    assert p.threshold_for("tiny") == 0.9 and p.threshold_for("zzz") == 0.5
    assert p.threshold_for("micro-s") == get_preset("accurate").threshold_for("micro-s")
    plain = Preset.from_def(Def("plain"))
    assert plain.default_threshold == get_preset("balanced").default_threshold
    assert get_preset("plain", {"plain": plain}) is plain
    with pytest.raises(InvalidArgumentError, match="unknown base"):
        Preset.from_def(Def("bad", base="missing"))


def test_preselect_rules() -> None:
    rungs = ["s", "m", "l"]
    p = get_preset("balanced")
    assert preselect(feats(), rungs, p) == (0, "short_clean")
    assert preselect(feats(snr_db=6.0), rungs, p) == (1, "noisy_or_complex")
    assert preselect(feats(complexity=0.7), rungs, p) == (1, "noisy_or_complex")
    assert preselect(feats(snr_db=0.0), rungs, p) == (2, "very_noisy_or_complex")
    assert preselect(feats(snr_db=0.0), ["s", "m"], p) == (1, "very_noisy_or_complex")
    assert preselect(feats(speech_ratio=0.0, snr_db=-10.0), rungs, p) == (0, "no_speech")
    assert preselect(feats(duration_s=120.0, snr_db=15.0), rungs, p) == (0, "default")
    degraded = p.with_overrides(default_model="m")
    assert preselect(None, rungs, degraded) == (1, "no_analysis")
    assert preselect(feats(snr_db=0.0), rungs, degraded.with_overrides(preselect=False)) == (
        1,
        "preselect_off",
    )
    with pytest.raises(InvalidArgumentError):
        preselect(feats(), [], p)


def test_preselect_never_skips_what_the_preset_keeps() -> None:
    rungs = ["tiny", "micro-xs-q8_0", "micro-s-q8_0"]
    p = get_preset("balanced").with_overrides(never_skip=frozenset({"micro-xs"}))
    assert not p.may_skip("micro-xs-q8_0") and p.may_skip("tiny") and p.may_skip("micro-s")
    # the rules would skip one or two rungs; the kept model caps them at rung 1
    assert preselect(feats(snr_db=6.0), rungs, p) == (1, "noisy_or_complex")
    assert preselect(feats(snr_db=0.0), rungs, p) == (1, "no_skip")
    assert preselect(feats(snr_db=0.0), rungs[1:], p) == (0, "no_skip")
    assert preselect(feats(), rungs[1:], p) == (0, "short_clean")
    assert rule_rung(feats(snr_db=0.0), 3) == (2, "very_noisy_or_complex")
    assert rule_rung(feats(duration_s=120.0, snr_db=15.0), 3) == (None, "default")


def test_ladders() -> None:
    ladders = builtin_ladders()
    assert ladders["micro"].names == ("micro-s", "micro-m", "micro-l")
    assert ladders["openai"].names == ("tiny", "base", "small", "medium", "large-v3")
    assert ladders["openai.en"].names[0] == "tiny.en"
    for ladder in ladders.values():
        costs = [m.relative_cost for m in ladder.models]
        assert costs == sorted(costs)
    custom = get_ladder("tiny,small-q8_0,/x/ggml-big.bin")
    assert custom.names == ("tiny", "small-q8_0", "big") and len(custom) == 3
    assert custom.models[2].path is not None
    assert get_ladder(["tiny", "base"]).names == ("tiny", "base")
    assert get_ladder(None).name == "micro" and get_ladder(custom) is custom
    assert spec_for("whatever").family == "custom"
    with pytest.raises(InvalidArgumentError, match="unknown ladder"):
        get_ladder("nope")
    with pytest.raises(InvalidArgumentError):
        Ladder.from_names("dup", ["tiny", "tiny"])
    with pytest.raises(InvalidArgumentError):
        Ladder("empty", ())


def test_circuit_breaker_opens_and_half_opens() -> None:
    now = [0.0]
    b = CircuitBreaker(failure_threshold=2, cooldown_s=10.0, clock=lambda: now[0])
    assert b.allow() and b.state == "closed"
    b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.state == "half_open" and b.allow() and not b.allow()  # one trial at a time
    b.record_failure()
    assert b.state == "open"
    now[0] = 20.0
    assert b.allow()
    b.record_success()
    assert b.snapshot() == {"state": "closed", "consecutive_failures": 0, "total_failures": 3}
    board = BreakerBoard(1, 1.0)
    assert board.get("a") is board.get("a")
    board.get("a").record_failure()
    assert board.snapshot()["a"]["state"] == "open"
    with pytest.raises(InvalidArgumentError):
        CircuitBreaker(0)


def test_analysis_cache_is_bounded_lru() -> None:
    cache = AnalysisCache(max_entries=2)
    calls: list[str] = []

    def compute(k: str) -> str:
        calls.append(k)
        return k.upper()

    for k in ["a", "b", "a", "c", "b"]:
        assert cache.get_or_compute(k, lambda k=k: compute(k)) == k.upper()  # type: ignore[misc]
    assert calls == ["a", "b", "c", "b"] and len(cache) == 2 and cache.hits == 1
    x = np.arange(10, dtype=np.float32)
    assert audio_hash(x) == audio_hash(x.copy()) != audio_hash(x[::-1].copy())
    with pytest.raises(InvalidArgumentError):
        AnalysisCache(0)


def _tokens(segs: list[tuple[int, int, str]]) -> TokenArrays:
    b = TokenArrays.builder()
    for t0, t1, text in segs:
        b.add_segment(t0, t1, text)
        for j, word in enumerate(text.split()):
            b.add_token(100 + j, f" {word}".encode(), 0.9, -0.1, t0, t1)
    return b.build()


def _transcription(tokens: TokenArrays, duration: float) -> Transcription:
    segments = tuple(
        Segment(t0 / 100, t1 / 100, text)
        for t0, t1, text in zip(
            tokens.segment_t0.tolist(),
            tokens.segment_t1.tolist(),
            tokens.segment_texts,
            strict=True,
        )
    )
    return Transcription("x", "", segments, {}, 0.0, "m", duration, 0.0, tokens=tokens)


def test_weak_spans_and_stitching_keep_order_and_text() -> None:
    base = _tokens([(0, 200, "one two"), (200, 400, "bad bad"), (400, 600, "five six")])
    tr = _transcription(base, 6.0)
    scores = [Score(0.9), Score(0.1), Score(0.9)]
    speech = [(0.2, 1.0), (2.3, 3.7), (4.8, 5.8)]
    spans = weak_spans(tr, scores, 0.5, speech=speech, margin_s=0.1)
    assert spans == [(pytest.approx(1.65), pytest.approx(4.25))]  # edges moved into pauses
    assert weak_spans(tr, [Score(0.1)] * 3, 0.5) is None  # all weak: whole file
    assert weak_spans(tr, [Score(0.9)] * 3, 0.5) is None
    assert weak_spans(tr, scores, 0.5, max_share=0.1) is None
    assert weak_spans(tr, scores[:2], 0.5) is None
    hall = [Score(0.9), Score(0.9, flags=("repetition",)), Score(0.9)]
    assert weak_spans(tr, hall, 0.5) is not None
    rerun = shift_tokens(_tokens([(0, 150, "three four")]), 1.65)
    assert rerun.segment_t0.tolist() == [165]
    out = stitch_tokens(base, spans or [], [rerun])
    assert out.segment_texts == ["one two", "three four", "five six"]
    starts, ends = out.segment_t0.tolist(), out.segment_t1.tolist()
    assert all(a <= b for a, b in zip(starts, ends, strict=True))
    assert all(ends[i] <= starts[i + 1] for i in range(len(starts) - 1))
    assert out.n_tokens == 6
    overlap = replace(rerun, segment_t0=np.array([150], dtype=np.int64))
    out2 = stitch_tokens(base, [(1.5, 4.25)], [overlap])
    assert out2.segment_t0.tolist()[1] >= out2.segment_t1.tolist()[0]
