"""Bring your own model: import a checkpoint, check its performance, gate quantization, register.

Deployment (strategies, health checks, rollback) lives in :mod:`whisper_cascade.deploy`.
See docs/lifecycle.md.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade.errors import (
    InvalidArgumentError,
    ModelNotFoundError,
    ModelValidationError,
    StateError,
    WhisperCascadeError,
)
from whisper_cascade.ggml_writer import WhisperDims, write_ggml_model
from whisper_cascade.manifest import ManifestItem, read_manifest
from whisper_cascade.modelfile import ModelInfo, quantize_model, validate_model
from whisper_cascade.store import ModelRecord, Store, StoreError, open_store, store_location

#: The largest vocabulary our converter writes correctly (English-only, GPT-2 tokens).
ENGLISH_N_VOCAB = 51864
TRAIN_EXTRA = "pip install whisper-cascade[train]"


class QuantizationRejectedError(ModelValidationError):
    """A quantized model lost more accuracy on the gate manifest than allowed (code
    ``quantization_gate``); the quantized file has been deleted."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "quantization_gate")


# --- import -------------------------------------------------------------------------------


def _load_pt(path: Path) -> tuple[Mapping[str, Any], Mapping[str, npt.NDArray[np.float32]]]:
    try:
        import torch
    except ImportError as exc:
        raise InvalidArgumentError(
            f"{path}: reading PyTorch checkpoints needs torch: {TRAIN_EXTRA}"
        ) from exc
    try:
        # weights_only refuses pickled code: a checkpoint can only hold tensors and plain data.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc
    except Exception as exc:  # torch raises plain pickle/runtime errors for bad files
        raise ModelValidationError(
            f"{path}: not a loadable PyTorch checkpoint ({type(exc).__name__}: {exc})",
            "bad_checkpoint",
        ) from exc
    if not isinstance(ckpt, Mapping) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ModelValidationError(
            f"{path}: not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')",
            "bad_checkpoint",
        )
    dims, state = ckpt["dims"], ckpt["model_state_dict"]
    if not isinstance(dims, Mapping) or not isinstance(state, Mapping):
        raise ModelValidationError(f"{path}: 'dims' and 'model_state_dict' must be dicts")
    arrays: dict[str, npt.NDArray[np.float32]] = {}
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise ModelValidationError(f"{path}: {name} is not a tensor", "bad_checkpoint")
        arrays[str(name)] = tensor.detach().to(torch.float32).numpy()
    return dims, arrays


def _dims(raw: Mapping[str, Any], where: Path) -> WhisperDims:
    try:
        dims = WhisperDims(**{k: int(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ModelValidationError(f"{where}: bad dims: {exc}", "bad_checkpoint") from exc
    if dims.n_vocab > ENGLISH_N_VOCAB:
        raise InvalidArgumentError(
            f"{where}: n_vocab {dims.n_vocab} is a multilingual model; the converter writes "
            f"English-only models (n_vocab <= {ENGLISH_N_VOCAB})"
        )
    return dims


def import_checkpoint(
    src: str | os.PathLike[str], out: str | os.PathLike[str], *, quantize: Sequence[str] = ()
) -> list[ModelInfo]:
    """Convert a Whisper checkpoint to a validated whisper.cpp f16 file at ``out``.

    ``src`` is an openai-whisper ``.pt`` (``{"dims", "model_state_dict"}``; needs torch) or a
    zoo ``.npz``. Each ``quantize`` type adds ``<out stem>-<type>.bin``. Returns the infos of
    every file written, f16 first.
    """
    path = Path(src)
    if not path.is_file():
        raise ModelNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".npz":
        from whisper_cascade.zoo.export import load_npz

        raw_dims, state = load_npz(path)
        dims: WhisperDims = _dims(raw_dims, path)
        arrays: Mapping[str, npt.NDArray[np.float32]] = state
    elif path.suffix in (".pt", ".pth"):
        raw, arrays = _load_pt(path)
        dims = _dims(raw, path)
    else:
        raise InvalidArgumentError(f"{path}: expected a .pt (openai-whisper) or .npz checkpoint")
    target = Path(out)
    write_ggml_model(target, dims, arrays)
    infos = [validate_model(target)]
    for qtype in quantize:
        qpath = target.with_name(f"{target.stem}-{qtype}{target.suffix}")
        quantize_model(target, qpath, qtype)
        infos.append(validate_model(qpath))
    return infos


# --- performance --------------------------------------------------------------------------


@dataclass(frozen=True)
class Performance:
    """One model on a set of utterances: WER, real-time factor, failures, mean score."""

    n: int
    failures: int
    wer: float
    rtf: float
    score: float | None
    audio_s: float
    time_s: float

    @property
    def failure_rate(self) -> float:
        """Share of utterances whose transcription failed (0 for an empty window)."""
        return self.failures / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: n, failures, failure_rate, wer, rtf, score, audio_s, time_s."""
        return {**asdict(self), "failure_rate": self.failure_rate}


@dataclass(frozen=True)
class ItemOutcome:
    """One utterance transcribed by one model (``error`` set when it failed)."""

    audio: str
    edits: int
    ref_words: int
    audio_s: float
    time_s: float
    score: float | None
    error: str | None = None


def summarize(outcomes: Sequence[ItemOutcome]) -> Performance:
    """Aggregate item outcomes into a :class:`Performance` (corpus WER, RTF, mean score)."""
    words = sum(o.ref_words for o in outcomes)
    edits = sum(o.edits for o in outcomes)
    audio_s = math.fsum(o.audio_s for o in outcomes if o.error is None)
    time_s = math.fsum(o.time_s for o in outcomes if o.error is None)
    scores = [o.score for o in outcomes if o.score is not None]
    return Performance(
        n=len(outcomes),
        failures=sum(1 for o in outcomes if o.error is not None),
        wer=(edits / words) if words else (0.0 if edits == 0 else 1.0),
        rtf=time_s / audio_s if audio_s > 0 else 0.0,
        score=math.fsum(scores) / len(scores) if scores else None,
        audio_s=audio_s,
        time_s=time_s,
    )


class ModelRunner:
    """Transcribes manifest items with one model file, measuring time and score per item."""

    def __init__(self, model_path: str | os.PathLike[str], *, sha256: str | None = None) -> None:
        from whisper_cascade.transcriber import Transcriber

        self.path = Path(model_path)
        self.sha256 = sha256
        self._transcriber = Transcriber()

    def run(self, item: ManifestItem) -> ItemOutcome:
        """Transcribe one item; a library error becomes a failed outcome, never an exception."""
        from whisper_cascade.audio import load_audio
        from whisper_cascade.evaluation import word_edits
        from whisper_cascade.policy import score

        started = time.perf_counter()
        try:
            audio = load_audio(item.path)
            result = self._transcriber.transcribe(self.path, audio, sha256=self.sha256)
            quality = score(result.confidence).value
        except WhisperCascadeError as exc:
            edits, words = word_edits(item.text, "")
            return ItemOutcome(
                item.audio, edits, words, 0.0, time.perf_counter() - started, None, str(exc)
            )
        edits, words = word_edits(item.text, result.text)
        return ItemOutcome(item.audio, edits, words, result.duration_s, result.time_s, quality)

    def close(self) -> None:
        """Release the loaded model."""
        self._transcriber.pool.close()


def manifest_items(
    manifest: str | os.PathLike[str] | Sequence[ManifestItem],
) -> list[ManifestItem]:
    """The items of a manifest file (which must not be empty), or a copy of a list of items."""
    if isinstance(manifest, str | os.PathLike):
        items = read_manifest(manifest)
        if not items:
            raise InvalidArgumentError(f"{manifest}: the manifest has no utterances")
        return items
    return list(manifest)


def performance_check(
    model_path: str | os.PathLike[str],
    manifest: str | os.PathLike[str] | Sequence[ManifestItem],
    *,
    sha256: str | None = None,
) -> Performance:
    """WER, real-time factor, failures and mean score of one model over a manifest."""
    runner = ModelRunner(model_path, sha256=sha256)
    try:
        return summarize([runner.run(item) for item in manifest_items(manifest)])
    finally:
        runner.close()


def gate_verdict(before: Performance, after: Performance, max_wer_increase: float) -> str | None:
    """Why the quantized model (``after``) fails the gate against its input (``before``), or
    None when it passes: more failures, or a WER more than ``max_wer_increase`` higher."""
    increase = after.wer - before.wer
    if increase > max_wer_increase or after.failures > before.failures:
        return (
            f"WER {100 * after.wer:.2f}% vs {100 * before.wer:.2f}% "
            f"(+{100 * increase:.2f} pts, allowed +{100 * max_wer_increase:.2f}), failures "
            f"{after.failures} vs {before.failures}"
        )
    return None


def gated_quantize(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    qtype: str,
    gate_manifest: str | os.PathLike[str] | None = None,
    max_wer_increase: float = 0.01,
) -> dict[str, Any]:
    """Quantize ``src`` to ``out``; with a gate manifest, keep it only if its WER is at most
    ``max_wer_increase`` (a fraction) above the input's. A rejected output is deleted and
    :class:`QuantizationRejectedError` raised. Returns the quantizer's report, plus
    ``gate`` (both performances) when gated."""
    if not math.isfinite(max_wer_increase) or max_wer_increase < 0:
        raise InvalidArgumentError(f"max_wer_increase must be >= 0, got {max_wer_increase}")
    report = quantize_model(Path(src), Path(out), qtype)
    if gate_manifest is None:
        return report
    items = manifest_items(gate_manifest)
    try:
        before = performance_check(src, items)
        after = performance_check(out, items)
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise
    problem = gate_verdict(before, after, max_wer_increase)
    if problem is not None:
        Path(out).unlink(missing_ok=True)
        raise QuantizationRejectedError(f"{qtype} rejected: {problem}; {out} deleted")
    return {**report, "gate": {"input": before.to_dict(), "output": after.to_dict()}}


# --- registry -----------------------------------------------------------------------------


def _next_version(records: Sequence[ModelRecord]) -> str:
    numbers = [int(r.version) for r in records if r.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def register(
    store: Store,
    name: str,
    path: str | os.PathLike[str],
    ladder: str = "custom",
    version: str | None = None,
) -> ModelRecord:
    """Validate the model at ``path`` and add it to the registry as ``name``.

    ``version`` defaults to the version already holding this exact file (same SHA-256), else
    the next integer. Returns the registry record.
    """
    if not name or any(c in name for c in "/\\@ ") or name.endswith(".bin"):
        raise InvalidArgumentError(f"bad model name {name!r}: no '/', '@', spaces or '.bin'")
    info = validate_model(Path(path))
    if info.sha256 is None:  # validate_model always hashes; this narrows the type
        raise ModelValidationError(f"{path}: no checksum computed", "sha256_missing")
    absolute = str(Path(path).resolve())
    existing = store.list_models(name)
    same = [r for r in existing if r.sha256 == info.sha256 and r.path == absolute]
    if version is not None:
        chosen = version
    else:
        chosen = same[-1].version if same else _next_version(existing)
    store.register_model(name, absolute, info.sha256, ladder, chosen)
    return get_version(store, name, chosen)


def get_version(store: Store, name: str, version: str) -> ModelRecord:
    """The registry record of ``name`` at ``version`` (StateError when absent)."""
    for record in store.list_models(name):
        if record.version == version:
            return record
    raise StateError(f"model {name!r} version {version!r} is not registered")


def active_version(store: Store, name: str) -> ModelRecord | None:
    """The ``active`` version of ``name``, or None."""
    return next((r for r in store.list_models(name) if r.state == "active"), None)


def registered_records(store_url: str | os.PathLike[str] | None = None) -> list[ModelRecord]:
    """Every registry record of the selected store, or ``[]`` when it does not exist or cannot
    be read. Never creates a store."""
    location = store_location(store_url)
    is_url = location.startswith(("postgresql://", "postgres://"))
    if not is_url and not Path(location).expanduser().is_file():
        return []
    try:
        with open_store(location) as store:
            return store.list_models()
    except StoreError:
        return []


def resolve_registered(
    name: str, store_url: str | os.PathLike[str] | None = None
) -> ModelRecord | None:
    """The active registry version of ``name``, or None (no store, no entry, unreadable), so
    the ordinary file search still works."""
    if os.sep in name or name.endswith(".bin"):
        return None
    records = registered_records(store_url)
    return next((r for r in records if r.name == name and r.state == "active"), None)


__all__ = [
    "ItemOutcome",
    "ModelRunner",
    "Performance",
    "QuantizationRejectedError",
    "active_version",
    "gate_verdict",
    "gated_quantize",
    "get_version",
    "import_checkpoint",
    "manifest_items",
    "performance_check",
    "register",
    "registered_records",
    "resolve_registered",
    "summarize",
]
