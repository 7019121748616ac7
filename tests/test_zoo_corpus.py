"""Tests of the zoo's grammar and synthetic corpus (espeak-ng, conditions, manifest)."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_cascade.errors import AudioError, InvalidArgumentError
from whisper_cascade.zoo import corpus
from whisper_cascade.zoo.corpus import (
    SAMPLE_RATE,
    Condition,
    corpus_cli,
    generate_corpus,
    parse_condition,
    read_manifest,
    render,
    synthesize,
)
from whisper_cascade.zoo.grammar import Grammar, load_grammar

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
SHARED = Path("/work/shared/domain/grammar.json")


@pytest.fixture(scope="module")
def grammar() -> Grammar:
    return load_grammar()


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return synthesize("turn on the kitchen lights", "en-us", 170, 50)


def test_bundled_grammar_matches_the_shared_domain(grammar: Grammar) -> None:
    if SHARED.exists():
        assert grammar.templates == load_grammar(SHARED).templates
    assert "kitchen" in grammar.words() and "{" not in " ".join(grammar.words())
    assert grammar.max_words() == len(grammar.longest_sentence().split())


def test_sample_is_deterministic_and_fully_expanded(grammar: Grammar) -> None:
    a = [grammar.sample(random.Random(7)) for _ in range(3)]
    b = [grammar.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(3)
    for _ in range(300):
        sentence = grammar.sample(rng)
        assert "{" not in sentence and sentence == sentence.lower()
        assert set(sentence.split()) <= grammar.words()


def test_split_is_stable_and_sampling_respects_it(grammar: Grammar) -> None:
    rng = random.Random(5)
    held = [grammar.sample(rng, "heldout") for _ in range(50)]
    train = [grammar.sample(rng, "train") for _ in range(50)]
    assert all(grammar.split_of(s) == "heldout" for s in held)
    assert all(grammar.split_of(s) == "train" for s in train)
    assert grammar.split_of("turn  on the kitchen lights") == grammar.split_of(
        "turn on the kitchen lights"
    )
    share = sum(grammar.split_of(grammar.sample(rng)) == "heldout" for _ in range(2000)) / 2000
    assert 0.05 < share < 0.15
    with pytest.raises(InvalidArgumentError):
        grammar.sample(rng, "test")


def test_bad_grammars_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="undefined"):
        Grammar.from_dict({"templates": ["go {nowhere}"], "slots": {}})
    with pytest.raises(InvalidArgumentError, match="itself"):
        Grammar.from_dict({"templates": ["{a}"], "slots": {"a": ["x {a}"]}})
    with pytest.raises(InvalidArgumentError, match="malformed"):
        Grammar.from_dict({"slots": {}})
    with pytest.raises(InvalidArgumentError):
        Grammar.from_dict({"templates": [], "slots": {}})
    with pytest.raises(InvalidArgumentError):
        Grammar.from_dict({"templates": ["a"], "slots": {}}, heldout_fraction=1.0)
    bad = tmp_path / "g.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="JSON"):
        load_grammar(bad)
    bad.write_text("[1]")
    with pytest.raises(InvalidArgumentError, match="object"):
        load_grammar(bad)
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        load_grammar(tmp_path / "missing.json")


def test_parse_condition() -> None:
    assert parse_condition("clean") == Condition("clean", None)
    assert parse_condition("pink10") == Condition("pink", 10.0)
    assert parse_condition("babble") == Condition("babble", None)
    assert parse_condition("white20").name(20.0) == "white20"
    for bad in ("loud", "reverb3", "white99", ""):
        with pytest.raises(InvalidArgumentError):
            parse_condition(bad)


def test_synthesize(clean: np.ndarray) -> None:
    assert clean.dtype == np.float32 and 0.5 < clean.size / SAMPLE_RATE < 4.0
    assert float(np.max(np.abs(clean))) > 0.05
    with pytest.raises(AudioError):
        synthesize("hello", "zzq-nonexistent")
    with pytest.raises(InvalidArgumentError):
        synthesize("  ", "en-us")


def _measured_snr(out: np.ndarray, clean: np.ndarray, info: dict[str, object]) -> float:
    lead = round(float(info["speech_start"]) * SAMPLE_RATE)  # type: ignore[arg-type]
    ref = np.zeros_like(out, dtype=np.float64)
    ref[lead : lead + clean.size] = clean
    scale = float(np.dot(out, ref) / np.dot(ref, ref))
    region = slice(lead, lead + clean.size)
    noise = out[region] - scale * ref[region]
    return 10 * math.log10(np.mean((scale * ref[region]) ** 2) / np.mean(noise**2))


@pytest.mark.parametrize("name", ["white20", "pink10", "babble5", "white0"])
def test_noise_conditions_hit_the_requested_snr(name: str, clean: np.ndarray) -> None:
    cond = parse_condition(name)
    pool = [synthesize(t, "en-gb-x-rp", 190) for t in ("call mom at home", "play some jazz now")]
    out, info = render(clean, cond, np.random.default_rng(1), pool)
    assert info["condition"] == name and info["snr_db"] == cond.snr_db
    assert abs(_measured_snr(out, clean, info) - float(cond.snr_db or 0)) < 1.0


def test_random_snr_is_named_and_peak_in_range(clean: np.ndarray) -> None:
    out, info = render(clean, Condition("pink"), np.random.default_rng(4), [])
    assert info["condition"] == f"pink{info['snr_db']:g}" and 0 <= info["snr_db"] <= 30
    peak_db = 20 * math.log10(float(np.max(np.abs(out))))
    assert abs(peak_db - info["peak_dbfs"]) < 0.01 and -30.01 <= peak_db <= 0


def test_other_conditions(clean: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    out, info = render(clean, Condition("speed"), rng, [])
    speech = (info["speech_end"] - info["speech_start"]) * SAMPLE_RATE
    assert abs(speech - clean.size / info["speed"]) < 2
    out, info = render(clean, Condition("clean"), rng, [])
    assert 0 <= info["speech_start"] <= 0.5 and info["duration"] - info["speech_end"] <= 0.5
    rev = corpus.reverberate(clean, rng, 0.6)
    assert rev.size == clean.size and abs(corpus.power(rev) / corpus.power(clean) - 1) < 1e-3
    assert not np.allclose(rev, clean)
    noise = corpus.colored_noise(SAMPLE_RATE * 2, "white", rng)
    phone = corpus.telephone(noise, rng)
    spec = np.abs(np.fft.rfft(phone)) ** 2
    freqs = np.fft.rfftfreq(phone.size, 1 / SAMPLE_RATE)
    band = spec[(freqs > 600) & (freqs < 3000)].mean()
    assert spec[freqs > 4500].mean() < band * 1e-3 and spec[freqs < 100].mean() < band * 0.05
    ramp = corpus.volume_ramp(np.ones(SAMPLE_RATE, np.float32), rng)
    assert ramp.min() >= 10 ** (-15 / 20) - 1e-6 and ramp.max() <= 1.0 and ramp.std() > 0.01
    with pytest.raises(InvalidArgumentError):
        corpus.colored_noise(10, "brown", rng)
    with pytest.raises(InvalidArgumentError):
        corpus.babble_noise(10, [], rng)


CONDS = ["clean", "white20", "pink10", "babble5", "reverb", "phone", "speed", "volume"]


def test_generate_corpus_is_deterministic_with_valid_manifest(tmp_path: Path) -> None:
    a = generate_corpus(tmp_path / "a", 4, 11, conditions=CONDS, variants=2, voices=["en-us"])
    b = generate_corpus(tmp_path / "b", 4, 11, conditions=CONDS, variants=2, voices=["en-us"])
    assert a.read_text() == b.read_text()
    rows = [json.loads(line) for line in a.read_text().splitlines()]
    assert len(rows) == 4 and rows[0]["text"] == rows[1]["text"]
    assert rows[0]["condition"] != rows[1]["condition"]
    for row, resolved in zip(rows, read_manifest(a), strict=True):
        assert not Path(row["audio"]).is_absolute()
        assert (a.parent / row["audio"]).read_bytes() == (b.parent / row["audio"]).read_bytes()
        data, rate = sf.read(resolved["audio"], dtype="float32")
        info = sf.info(resolved["audio"])
        assert rate == SAMPLE_RATE and data.ndim == 1 and info.subtype == "PCM_16"
        assert abs(data.size / rate - row["duration"]) < 1e-3
        assert row["voice"].startswith("en-us") and row["split"] == "train"
        assert {"text", "condition", "snr_db", "seed", "voice"} <= row.keys()


def test_heldout_corpus_uses_new_sentences(tmp_path: Path, grammar: Grammar) -> None:
    m = generate_corpus(tmp_path / "h", 3, 11, split="heldout", conditions=["clean"], workers=2)
    held = {r["text"] for r in read_manifest(m)}
    assert len(held) == 3 and all(grammar.split_of(t) == "heldout" for t in held)
    train = generate_corpus(tmp_path / "t", 3, 11, conditions=["clean"], voices=["en-gb-x-rp"])
    assert held.isdisjoint(r["text"] for r in read_manifest(train))


def test_swapped_sentences_move_slot_values_and_stay_in_the_train_split(
    grammar: Grammar,
) -> None:
    rng = random.Random(5)
    swapped = [grammar.sample_swapped(rng) for _ in range(400)]
    assert all(grammar.split_of(s) == "train" for s in swapped)
    assert all(set(s.split()) <= grammar.words() for s in swapped)
    plain = {grammar.sample(random.Random(i)) for i in range(3000)}
    # at least one slot always holds another slot's value: almost never a grammar sentence
    assert sum(s in plain for s in swapped) < 20
    drive = [s for s in swapped if s.startswith("how long will it take to drive to ")]
    cities = set(grammar.slots["city"])
    assert drive
    assert all(s.removeprefix("how long will it take to drive to ") not in cities for s in drive)
    again = random.Random(5)
    assert swapped == [grammar.sample_swapped(again) for _ in range(400)]
    with pytest.raises(InvalidArgumentError):
        grammar.sample_swapped(rng, swap=1.5)
    single = Grammar(("say {a}",), {"a": ("yes",)})
    with pytest.raises(InvalidArgumentError):
        single.sample_swapped(rng)


def test_swapped_corpus(tmp_path: Path, grammar: Grammar) -> None:
    m = generate_corpus(tmp_path / "s", 2, 4, conditions=["clean"], swap_slots=1.0)
    rows = read_manifest(m)
    assert len(rows) == 2 and all(grammar.split_of(r["text"]) == "train" for r in rows)
    again = generate_corpus(tmp_path / "s2", 2, 4, conditions=["clean"], swap_slots=1.0)
    assert m.read_text() == again.read_text()
    with pytest.raises(InvalidArgumentError):
        generate_corpus(tmp_path, 1, 1, split="heldout", swap_slots=0.5)
    with pytest.raises(InvalidArgumentError):
        generate_corpus(tmp_path, 1, 1, swap_slots=-0.1)


def test_generate_corpus_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        generate_corpus(tmp_path, 0, 1)
    with pytest.raises(InvalidArgumentError):
        generate_corpus(tmp_path, 1, 1, split="dev")
    with pytest.raises(InvalidArgumentError):
        generate_corpus(tmp_path, 1, 1, conditions=["thunder"])
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError):
        generate_corpus(tmp_path / "file" / "sub", 1, 1)


def test_corpus_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        corpus_cli([str(tmp_path / "c"), "--n", "2", "--seed", "3", "--conditions", "phone"]) == 0
    )
    assert (tmp_path / "c" / "manifest.jsonl").exists()
    assert corpus_cli([str(tmp_path / "d"), "--n", "1", "--conditions", "loud"]) == 2
    assert "unknown condition" in capsys.readouterr().out


def test_npz_checkpoint_round_trip(tmp_path: Path) -> None:
    from whisper_cascade.errors import FileAccessError
    from whisper_cascade.zoo.export import DIM_NAMES, load_npz, save_npz

    dims = {k: i + 1 for i, k in enumerate(DIM_NAMES)}
    state = {"decoder.ln.weight": np.arange(4, dtype=np.float32)}
    save_npz(tmp_path / "m.npz", dims, state)
    got_dims, got = load_npz(tmp_path / "m.npz")
    assert got_dims == dims and np.array_equal(got["decoder.ln.weight"], state["decoder.ln.weight"])
    with pytest.raises(InvalidArgumentError):
        save_npz(tmp_path / "x.npz", {"n_mels": 80}, state)
    with pytest.raises(FileAccessError):
        save_npz(tmp_path / "no" / "x.npz", dims, state)
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(InvalidArgumentError, match="not a zoo"):
        load_npz(tmp_path / "plain.npz")
    np.savez(tmp_path / "few.npz", __dims__=np.array('{"n_mels": 80}'))
    with pytest.raises(InvalidArgumentError, match="lack"):
        load_npz(tmp_path / "few.npz")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(InvalidArgumentError, match="corrupt"):
        load_npz(tmp_path / "bad.npz")
    with pytest.raises(FileAccessError):
        load_npz(tmp_path / "missing.npz")
