"""Training data for the zoo: log-mel features in a float16 memmap plus token sequences.

Needs the ``train`` extra (torch + openai-whisper); imported only by ``zoo.train``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import torch  # type: ignore[import-not-found, unused-ignore]
import whisper  # type: ignore[import-not-found, unused-ignore]
from whisper.tokenizer import get_tokenizer  # type: ignore[import-not-found, unused-ignore]

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.zoo.corpus import SAMPLE_RATE, read_manifest
from whisper_cascade.zoo.grammar import Grammar

N_MELS = 80
HOP = 160
TS_STEP_S = 0.02


def tokenizer() -> Any:
    """The English-only Whisper tokenizer (n_vocab 51864)."""
    return get_tokenizer(multilingual=False)


def log_mel_window(audio: npt.NDArray[np.float32], window_s: float) -> npt.NDArray[np.float16]:
    """Log-mel of ``audio`` trimmed / zero-padded to the window, as whisper.cpp computes it
    (reflect-padded start, zeros after the audio, max-8 dB clamp over the whole signal)."""
    n = int(window_s * SAMPLE_RATE)
    x = np.zeros(n, dtype=np.float32)
    x[: min(n, audio.size)] = audio[:n]
    mel = whisper.log_mel_spectrogram(torch.from_numpy(x), n_mels=N_MELS, padding=400)
    out: npt.NDArray[np.float16] = mel[:, : n // HOP].numpy().astype(np.float16)
    return out


def domain_token_ids(grammar: Grammar, tok: Any, window_s: float) -> list[int]:
    """Every token id a transcript of the domain can use (text, specials, timestamps)."""
    ids = {tok.sot, tok.eot, tok.no_timestamps}
    for word in grammar.words():
        ids.update(tok.encode(" " + word))
    n_ts = int(round(window_s / TS_STEP_S)) + 1
    ids.update(range(tok.timestamp_begin, tok.timestamp_begin + n_ts))
    return sorted(ids)


def token_sequence(tok: Any, text: str, end_s: float | None) -> list[int]:
    """``[sot, no_timestamps] text eot``, or with ``end_s`` ``[sot, <0.00>] text <end> eot``."""
    body = list(tok.encode(" " + text))
    if end_s is None:
        return [tok.sot, tok.no_timestamps, *body, tok.eot]
    end = tok.timestamp_begin + int(round(end_s / TS_STEP_S))
    return [tok.sot, tok.timestamp_begin, *body, end, tok.eot]


def difficulty(row: dict[str, Any]) -> float:
    """0 (clean speech) .. 1 (babble at 0 dB): drives the clean-to-noisy curriculum."""
    kind = row.get("kind", "clean")
    if kind in ("white", "pink", "babble"):
        snr = 30.0 if row.get("snr_db") is None else float(row["snr_db"])
        scale = 1.0 if kind == "babble" else 0.85
        return scale * min(1.0, max(0.0, (30.0 - snr) / 30.0))
    return {"reverb": 0.5, "phone": 0.4, "speed": 0.1, "volume": 0.1}.get(kind, 0.0)


@dataclass
class FeatureSet:
    """Memmapped features ``[N, 80, frames]`` with per-row metadata."""

    mels: npt.NDArray[np.float16]
    rows: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.rows)


def build_features(manifest: Path, prefix: Path, window_s: float, log_every: int = 2000) -> None:
    """Compute the features of every manifest row into ``prefix.npy`` / ``prefix.json``
    (skipped when both exist; written under temporary names then renamed)."""
    data, meta = prefix.with_suffix(".npy"), prefix.with_suffix(".json")
    if data.exists() and meta.exists():
        return
    rows = read_manifest(manifest)
    frames = int(window_s * SAMPLE_RATE) // HOP
    tmp = prefix.with_suffix(".tmp.npy")
    mm = np.lib.format.open_memmap(tmp, "w+", np.float16, (len(rows), N_MELS, frames))
    start = time.time()
    kept = []
    for i, row in enumerate(rows):
        audio, rate = sf.read(row["audio"], dtype="float32")
        if rate != SAMPLE_RATE or audio.ndim != 1:
            raise InvalidArgumentError(f"{row['audio']}: expected 16 kHz mono")
        if audio.size > window_s * SAMPLE_RATE:
            print(f"warning: {row['audio']} longer than the {window_s} s window", flush=True)
        mm[i] = log_mel_window(audio, window_s)
        kept.append({k: row[k] for k in ("text", "kind", "condition", "snr_db", "voice")})
        kept[-1].update(speech_end=row.get("speech_end"), duration=row.get("duration"))
        if log_every and (i + 1) % log_every == 0:
            print(
                f"features {prefix.name}: {i + 1}/{len(rows)} {time.time() - start:.0f}s",
                flush=True,
            )
    mm.flush()
    del mm
    tmp.rename(data)
    meta.write_text(json.dumps({"window_s": window_s, "rows": kept}))


def load_features(prefix: Path) -> FeatureSet:
    """Open features written by :func:`build_features` (read-only memmap)."""
    meta = json.loads(prefix.with_suffix(".json").read_text())
    mels = np.load(prefix.with_suffix(".npy"), mmap_mode="r")
    return FeatureSet(mels, list(meta["rows"]))
