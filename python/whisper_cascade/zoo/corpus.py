"""Synthetic speech corpus of the closed domain: espeak-ng voices under clean and degraded
conditions, written as 16 kHz mono PCM16 WAVs plus a ``manifest.jsonl``."""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import random
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from whisper_cascade import manifest
from whisper_cascade.errors import AudioError, InvalidArgumentError, WhisperCascadeError
from whisper_cascade.zoo.grammar import Grammar, load_grammar

SAMPLE_RATE = 16_000
CONDITION_KINDS = ("clean", "white", "pink", "babble", "reverb", "phone", "speed", "volume")
NOISE_KINDS = ("white", "pink", "babble")
MAX_PAD_S = 0.5
SNR_RANGE_DB = (0, 30)
PEAK_RANGE_DBFS = (-30.0, -0.5)
_COND = re.compile(r"^([a-z]+?)(-?\d+(?:\.\d+)?)?$")
_BABBLE_POOL = 24

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Condition:
    """A recording condition; noise kinds carry an SNR (``None``: random per utterance)."""

    kind: str
    snr_db: float | None = None

    def name(self, snr_db: float | None) -> str:
        """The manifest name, e.g. ``white20`` (noise kinds carry their SNR)."""
        return self.kind if snr_db is None else f"{self.kind}{snr_db:g}"


def parse_condition(name: str) -> Condition:
    """``clean``, ``reverb``, ``phone``, ``speed``, ``volume``, or a noise kind ``white``,
    ``pink``, ``babble`` optionally followed by a fixed SNR in dB (``pink10``)."""
    match = _COND.match(name.strip().lower())
    if not match or match.group(1) not in CONDITION_KINDS:
        raise InvalidArgumentError(f"unknown condition {name!r}; kinds: {CONDITION_KINDS}")
    kind, snr = match.group(1), match.group(2)
    if snr is not None and kind not in NOISE_KINDS:
        raise InvalidArgumentError(f"condition {kind!r} takes no SNR")
    if snr is not None and not -20.0 <= float(snr) <= 80.0:
        raise InvalidArgumentError(f"SNR of {name!r} outside -20..80 dB")
    return Condition(kind, None if snr is None else float(snr))


def synthesize(text: str, voice: str, wpm: int = 170, pitch: int = 50) -> Audio:
    """Speak ``text`` with espeak-ng (``voice`` may carry a ``+variant``); 16 kHz float32."""
    if not text.strip() or text.lstrip().startswith("-"):
        raise InvalidArgumentError(f"cannot speak {text!r}")
    cmd = ["espeak-ng", "-v", voice, "-s", str(int(wpm)), "-p", str(int(pitch)), "--stdout", text]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
        data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    except FileNotFoundError as exc:
        raise AudioError("espeak-ng is not installed") from exc
    except (subprocess.SubprocessError, sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"espeak-ng failed for voice {voice!r}: {exc}") from exc
    if data.ndim > 1:
        data = data.mean(axis=1)
    if data.size == 0:
        raise AudioError(f"espeak-ng produced no audio for voice {voice!r}")
    return np.asarray(soxr.resample(data, rate, SAMPLE_RATE), dtype=np.float32)


def power(x: npt.NDArray[np.floating[Any]]) -> float:
    """Mean power (mean square) of a signal."""
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def colored_noise(n: int, kind: str, rng: np.random.Generator) -> Audio:
    """White or pink (1/f power) Gaussian noise of unit power."""
    white = rng.standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        spec[1:] /= np.sqrt(freqs[1:])
        spec[0] = 0.0
        white = np.fft.irfft(spec, n)
    elif kind != "white":
        raise InvalidArgumentError(f"unknown noise colour {kind!r}")
    return (white / math.sqrt(max(power(white), 1e-20))).astype(np.float32)


def babble_noise(n: int, pool: Sequence[Audio], rng: np.random.Generator) -> Audio:
    """Several talkers at once: a sum of 3 to 6 pool utterances, looped and shifted."""
    if not pool:
        raise InvalidArgumentError("babble needs a pool of utterances")
    out = np.zeros(n, dtype=np.float64)
    for idx in rng.choice(len(pool), size=min(len(pool), int(rng.integers(3, 7))), replace=False):
        clip = pool[int(idx)]
        looped = np.resize(clip, n + clip.size)
        start = int(rng.integers(0, clip.size))
        out += looped[start : start + n] / math.sqrt(max(power(clip), 1e-20))
    return (out / math.sqrt(max(power(out), 1e-20))).astype(np.float32)


def mix_at_snr(speech: Audio, noise: Audio, snr_db: float, region: tuple[int, int]) -> Audio:
    """``speech + g * noise`` with ``g`` chosen so that the power ratio over ``region``
    (the samples where the utterance is) equals ``snr_db``."""
    lo, hi = region
    p_speech, p_noise = power(speech[lo:hi]), power(noise[lo:hi])
    if p_speech <= 0.0 or p_noise <= 0.0:
        return speech.copy()
    gain = math.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (speech + gain * noise).astype(np.float32)


def reverberate(x: Audio, rng: np.random.Generator, rt60: float) -> Audio:
    """Convolve with a synthetic room: direct path plus exponentially decaying noise tail."""
    length = max(int(rt60 * SAMPLE_RATE), 16)
    t = np.arange(length) / SAMPLE_RATE
    rir = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)
    rir *= float(rng.uniform(0.2, 0.6)) / math.sqrt(power(rir) * length)
    rir[0] = 1.0
    size = 1 << (x.size + length - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: x.size]
    return (wet * math.sqrt(power(x) / max(power(wet), 1e-20))).astype(np.float32)


def telephone(x: Audio, rng: np.random.Generator) -> Audio:
    """8 kHz round trip with a 300-3400 Hz band-pass and, half of the time, 8-bit mu-law."""
    low = np.asarray(soxr.resample(x, SAMPLE_RATE, 8000), dtype=np.float64)
    spec = np.fft.rfft(low)
    freqs = np.fft.rfftfreq(low.size, 1.0 / 8000)
    spec *= 1.0 / np.sqrt(1.0 + (300.0 / np.maximum(freqs, 1.0)) ** 8)
    spec *= 1.0 / np.sqrt(1.0 + (freqs / 3400.0) ** 8)
    low = np.fft.irfft(spec, low.size)
    if rng.random() < 0.5:
        peak = max(float(np.max(np.abs(low))), 1e-9)
        y = np.sign(low) * np.log1p(255.0 * np.abs(low / peak)) / math.log(256.0)
        y = np.round(y * 127.0) / 127.0
        low = peak * np.sign(y) * np.expm1(np.abs(y) * math.log(256.0)) / 255.0
    back = np.asarray(soxr.resample(low.astype(np.float32), 8000, SAMPLE_RATE), np.float32)
    return np.resize(back, x.size) if back.size != x.size else back


def volume_ramp(x: Audio, rng: np.random.Generator) -> Audio:
    """Loudness that drifts inside the utterance (piecewise linear, 0 to -15 dB)."""
    knots = max(2, int(x.size / SAMPLE_RATE / 0.4) + 2)
    gains_db = rng.uniform(-15.0, 0.0, size=knots)
    env = np.interp(np.arange(x.size), np.linspace(0, x.size, knots), gains_db)
    return (x * 10.0 ** (env / 20.0)).astype(np.float32)


@dataclass(frozen=True)
class _Job:
    index: int
    seed: int
    split: str
    variants: int
    conditions: tuple[Condition, ...]
    voices: tuple[str, ...]
    out_dir: str
    swap_slots: float = 0.0


_STATE: dict[str, Any] = {}


def _init_worker(grammar: Grammar, pool: list[Audio]) -> None:
    _STATE["grammar"], _STATE["pool"] = grammar, pool


def _voice(grammar: Grammar, voices: Sequence[str], rnd: random.Random) -> tuple[str, int, int]:
    speech = grammar.speech
    voice = rnd.choice(list(voices))
    if "+" not in voice:
        voice += rnd.choice(list(speech.get("variants_for_training", [""])))
    lo_wpm, hi_wpm = speech.get("words_per_minute", [140, 200])
    lo_p, hi_p = speech.get("pitch", [35, 65])
    return voice, rnd.randint(int(lo_wpm), int(hi_wpm)), rnd.randint(int(lo_p), int(hi_p))


def render(
    speech: Audio, cond: Condition, rng: np.random.Generator, pool: Sequence[Audio]
) -> tuple[Audio, dict[str, Any]]:
    """Apply one condition plus random padding and loudness to a clean 16 kHz utterance.

    Returns the audio and manifest fields (``condition``, ``snr_db``, ``speech_start``...)."""
    info: dict[str, Any] = {"snr_db": None}
    x = speech.astype(np.float32)
    if cond.kind == "speed":
        factor = float(rng.uniform(0.8, 1.25))
        x = np.asarray(soxr.resample(x, SAMPLE_RATE, SAMPLE_RATE / factor), dtype=np.float32)
        info["speed"] = round(factor, 4)
    lead = int(rng.uniform(0.0, MAX_PAD_S) * SAMPLE_RATE)
    trail = int(rng.uniform(0.0, MAX_PAD_S) * SAMPLE_RATE)
    x = np.concatenate([np.zeros(lead, np.float32), x, np.zeros(trail, np.float32)])
    region = (lead, x.size - trail)
    if cond.kind == "reverb":
        rt60 = float(rng.uniform(0.2, 0.9))
        x = reverberate(x, rng, rt60)
        info["rt60"] = round(rt60, 3)
    elif cond.kind == "phone":
        x = telephone(x, rng)
    elif cond.kind == "volume":
        x = volume_ramp(x, rng)
    snr: float | None = None
    if cond.kind in NOISE_KINDS:
        snr = cond.snr_db
        if snr is None:
            snr = float(rng.integers(SNR_RANGE_DB[0], SNR_RANGE_DB[1] + 1))
        if cond.kind == "babble":
            noise = babble_noise(x.size, pool, rng)
        else:
            noise = colored_noise(x.size, cond.kind, rng)
        x = mix_at_snr(x, noise, snr, region)
        info["snr_db"] = snr
    peak_db = float(rng.uniform(*PEAK_RANGE_DBFS))
    peak = float(np.max(np.abs(x)))
    if peak > 0.0:
        x = (x * (10.0 ** (peak_db / 20.0) / peak)).astype(np.float32)
    info.update(
        condition=cond.name(snr),
        kind=cond.kind,
        peak_dbfs=round(peak_db, 2),
        speech_start=round(region[0] / SAMPLE_RATE, 7),
        speech_end=round(region[1] / SAMPLE_RATE, 7),
        duration=round(x.size / SAMPLE_RATE, 4),
    )
    return np.clip(x, -1.0, 1.0).astype(np.float32), info


def _make_sentence(job: _Job) -> list[dict[str, Any]]:
    grammar: Grammar = _STATE["grammar"]
    rnd = random.Random(f"{job.seed}/{job.split}/{job.index}")
    if job.swap_slots > 0.0:
        text = grammar.sample_swapped(rnd, job.swap_slots)
    else:
        text = grammar.sample(rnd, job.split)
    voice, wpm, pitch = _voice(grammar, job.voices, rnd)
    rng = np.random.default_rng(rnd.getrandbits(64))
    clean = synthesize(text, voice, wpm, pitch)
    picks = rng.permutation(len(job.conditions))
    rows = []
    for v in range(job.variants):
        cond = job.conditions[int(picks[v % len(picks)])]
        audio, info = render(clean, cond, rng, _STATE["pool"])
        rel = f"audio/{job.split}-{job.index:06d}-{v}.wav"
        sf.write(Path(job.out_dir) / rel, audio, SAMPLE_RATE, subtype="PCM_16")
        rows.append(
            {"audio": rel, "text": text, "voice": voice, "wpm": wpm, "pitch": pitch}
            | info
            | {"seed": job.seed, "split": job.split, "sentence": job.index, "variant": v}
        )
    return rows


def babble_pool(
    grammar: Grammar, voices: Sequence[str], seed: int, size: int = _BABBLE_POOL
) -> list[Audio]:
    """Utterances (of training sentences) that babble noise is mixed from."""
    rnd = random.Random(f"{seed}/babble")
    return [
        synthesize(grammar.sample(rnd, "train"), *_voice(grammar, voices, rnd)) for _ in range(size)
    ]


def generate_corpus(
    out_dir: str | Path,
    n: int,
    seed: int,
    *,
    conditions: Sequence[str] | None = None,
    voices: Sequence[str] | None = None,
    split: str = "train",
    workers: int = 1,
    variants: int = 1,
    grammar: Grammar | None = None,
    swap_slots: float = 0.0,
) -> Path:
    """Write ``n`` utterances (WAVs under ``out_dir/audio``) and ``out_dir/manifest.jsonl``.

    Sentences come from ``split`` ("train" or "heldout"); each is spoken once by a random
    voice and rendered in ``variants`` different random conditions (of ``conditions``, default
    all kinds with random SNRs). With ``swap_slots`` > 0 the sentences are training
    sentences whose slots hold other slots' values (:meth:`Grammar.sample_swapped`). The same
    arguments always produce identical files."""
    if n < 1 or variants < 1 or workers < 1:
        raise InvalidArgumentError("n, variants and workers must be >= 1")
    if split not in ("train", "heldout"):
        raise InvalidArgumentError(f"split must be 'train' or 'heldout', got {split!r}")
    if not 0.0 <= swap_slots <= 1.0 or (swap_slots > 0.0 and split != "train"):
        raise InvalidArgumentError("swap_slots must be in [0, 1], and only for the train split")
    grammar = grammar or load_grammar()
    conds = tuple(parse_condition(c) for c in (conditions or CONDITION_KINDS))
    voice_list = tuple(voices or grammar.speech.get("voices_for_training", ["en-us"]))
    if not conds or not voice_list:
        raise InvalidArgumentError("conditions and voices must not be empty")
    out = Path(out_dir)
    try:
        (out / "audio").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot create {out}: {exc}") from exc
    pool = babble_pool(grammar, voice_list, seed) if any(c.kind == "babble" for c in conds) else []
    n_sentences = -(-n // variants)
    jobs = [
        _Job(i, seed, split, variants, conds, voice_list, str(out), swap_slots)
        for i in range(n_sentences)
    ]
    if workers == 1:
        _init_worker(grammar, pool)
        results = [_make_sentence(j) for j in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(
            workers, _init_worker, (grammar, pool)
        ) as procs:
            results = procs.map(_make_sentence, jobs, chunksize=8)
    rows = [row for rs in results for row in rs][:n]
    manifest = out / "manifest.jsonl"
    with manifest.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    return manifest


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a manifest as dicts, ``audio`` resolved to an absolute path.

    Parsing and validation are :func:`whisper_cascade.manifest.read_manifest`'s; this only
    flattens each item for the training code.
    """
    rows: list[dict[str, Any]] = []
    for item in manifest.read_manifest(path):
        row: dict[str, Any] = dict(item.extra)
        row.update(audio=str(item.path.resolve()), text=item.text, condition=item.condition)
        row.update(voice=item.voice, snr_db=item.snr_db)
        rows.append(row)
    return rows


def corpus_cli(args: Sequence[str] | None = None) -> int:
    """``whisper-cascade zoo corpus OUT --n N --seed S [--split heldout] [--conditions ...]``."""
    parser = argparse.ArgumentParser(prog="whisper-cascade zoo corpus", description=__doc__)
    parser.add_argument("out", help="output folder (WAVs + manifest.jsonl)")
    parser.add_argument("--n", type=int, required=True, help="number of utterances")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("train", "heldout"), default="train")
    parser.add_argument("--conditions", nargs="+", help=f"kinds {CONDITION_KINDS}, e.g. pink10")
    parser.add_argument("--voices", nargs="+", help="espeak-ng voices (default: the grammar's)")
    parser.add_argument("--variants", type=int, default=1, help="conditions per sentence")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--swap-slots",
        type=float,
        default=0.0,
        metavar="P",
        help="training sentences with slots swapped for other slots' values (probability P)",
    )
    ns = parser.parse_args(args)
    try:
        manifest = generate_corpus(
            ns.out,
            ns.n,
            ns.seed,
            conditions=ns.conditions,
            voices=ns.voices,
            split=ns.split,
            workers=ns.workers,
            variants=ns.variants,
            swap_slots=ns.swap_slots,
        )
    except WhisperCascadeError as exc:
        print(f"error: {exc}")
        return 2
    print(manifest)
    return 0
