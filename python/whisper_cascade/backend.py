"""whisper.cpp through pywhispercpp's low-level bindings, guarded.

pywhispercpp's high-level ``Model`` keeps decoding parameters between calls, computes
probabilities in a Python loop and crashes the process on a bad model file. Here instead:

* every model file is validated by :func:`whisper_cascade.modelfile.validate_model` before
  whisper.cpp ever sees its path;
* every call builds a fresh ``whisper_full_params`` from a complete :class:`DecodeOptions`;
* one lock per loaded model (whisper.cpp contexts are not thread-safe and pywhispercpp
  releases the GIL during inference);
* samples are checked (float32, 1-D, finite, long enough) right before inference;
* token data is read once per call into :class:`~whisper_cascade.confidence.TokenArrays`.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _pywhispercpp as pw
import numpy as np
import numpy.typing as npt

from whisper_cascade.audio import MIN_SAMPLES, SAMPLE_RATE, pad_short
from whisper_cascade.backend_logs import quiet_loading
from whisper_cascade.confidence import FLAG_SPECIAL, FLAG_TIMESTAMP, TokenArrays
from whisper_cascade.errors import (
    AudioError,
    BackendError,
    InvalidArgumentError,
    ModelLoadError,
    ModelValidationError,
)
from whisper_cascade.modelfile import ModelInfo, validate_model

__all__ = [
    "SECONDS_PER_AUDIO_CTX",
    "ContextOptions",
    "DecodeOptions",
    "LoadedModel",
    "RawSegment",
    "RawTranscript",
]

SECONDS_PER_AUDIO_CTX = 0.02
"""Audio covered by one encoder position (2 mel frames of 10 ms)."""


@dataclass(frozen=True)
class ContextOptions:
    """Options of a whisper.cpp context, fixed when the model is loaded.

    ``flash_attn`` is off by default: on the CPU whisper.cpp's flash attention accumulates in
    float16, which changed 20 % of micro-xs's transcripts and cost it 2.4 WER points for 11 %
    less time (``bench/bench_flash_attn.py``); switch it on for speed on a GPU build."""

    use_gpu: bool = True
    flash_attn: bool = False
    gpu_device: int = 0

    def __post_init__(self) -> None:
        if self.gpu_device < 0:
            raise InvalidArgumentError(f"gpu_device must be >= 0, got {self.gpu_device}")


@dataclass(frozen=True)
class DecodeOptions:
    """The complete decoding parameter set; all of it is applied on every call.

    Defaults are deterministic: temperature 0 without fallback (``temperature_inc`` 0) and
    greedy decoding (``beam_size`` 0 or 1). ``n_threads`` 0 means min(4, CPU count);
    ``audio_ctx`` 0 means the model's own (or the one it was loaded with); ``max_tokens`` 0 means
    no limit per segment.
    """

    n_threads: int = 0
    language: str = "en"
    translate: bool = False
    no_timestamps: bool = False
    token_timestamps: bool = True
    temperature: float = 0.0
    temperature_inc: float = 0.0
    beam_size: int = 0
    patience: float = -1.0
    best_of: int = 1
    max_tokens: int = 0
    audio_ctx: int = 0
    suppress_blank: bool = True
    suppress_nst: bool = False
    initial_prompt: str | None = None
    no_context: bool = True
    single_segment: bool = False
    entropy_thold: float = 2.4
    logprob_thold: float = -1.0
    no_speech_thold: float = 0.6
    max_len: int = 0
    split_on_word: bool = False
    max_initial_ts: float = 1.0
    length_penalty: float = -1.0
    n_max_text_ctx: int = 16384

    def __post_init__(self) -> None:
        for name in ("n_threads", "beam_size", "max_tokens", "audio_ctx", "max_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(f"{name} must be an integer >= 0, got {value!r}")
        if not 1 <= self.best_of <= 16:
            raise InvalidArgumentError(f"best_of must be in 1..16, got {self.best_of}")
        if self.beam_size > 16:
            raise InvalidArgumentError(f"beam_size must be at most 16, got {self.beam_size}")
        if self.n_max_text_ctx < 0:
            raise InvalidArgumentError("n_max_text_ctx must be >= 0")
        if not 0.0 <= self.temperature <= 2.0 or not 0.0 <= self.temperature_inc <= 1.0:
            raise InvalidArgumentError("temperature must be in 0..2 and temperature_inc in 0..1")
        for name in ("temperature", "temperature_inc", "patience", "entropy_thold"):
            if not np.isfinite(getattr(self, name)):
                raise InvalidArgumentError(f"{name} must be finite")
        if self.language != "auto" and pw.whisper_lang_id(self.language) < 0:
            raise InvalidArgumentError(f"unknown language {self.language!r}")

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (``beam_size`` 0 or 1)."""
        return self.beam_size <= 1

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every option (for audit records)."""
        return asdict(self)


def _full_params(options: DecodeOptions, audio_ctx: int) -> Any:
    """A fresh whisper_full_params carrying every field of ``options``."""
    if options.greedy:
        params = pw.whisper_full_default_params(pw.WHISPER_SAMPLING_GREEDY)
        params.greedy = {"best_of": options.best_of}
    else:
        params = pw.whisper_full_default_params(pw.WHISPER_SAMPLING_BEAM_SEARCH)
        params.beam_search = {"beam_size": options.beam_size, "patience": options.patience}
    params.n_threads = options.n_threads or min(4, os.cpu_count() or 1)
    params.language = options.language
    params.translate = options.translate
    params.detect_language = False  # true would stop after language detection
    params.no_timestamps = options.no_timestamps
    params.token_timestamps = options.token_timestamps
    params.temperature = options.temperature
    params.temperature_inc = options.temperature_inc
    params.max_tokens = options.max_tokens
    params.audio_ctx = audio_ctx
    params.suppress_blank = options.suppress_blank
    params.suppress_nst = options.suppress_nst
    params.initial_prompt = options.initial_prompt or ""
    params.no_context = options.no_context
    params.single_segment = options.single_segment
    params.entropy_thold = options.entropy_thold
    params.logprob_thold = options.logprob_thold
    params.no_speech_thold = options.no_speech_thold
    params.max_len = options.max_len
    params.split_on_word = options.split_on_word
    params.max_initial_ts = options.max_initial_ts
    params.length_penalty = options.length_penalty
    params.n_max_text_ctx = options.n_max_text_ctx
    params.offset_ms = 0
    params.duration_ms = 0
    params.print_progress = False
    params.print_realtime = False
    params.print_timestamps = False
    params.print_special = False
    params.tdrz_enable = False
    params.vad = False
    return params


@dataclass(frozen=True)
class RawSegment:
    """One whisper.cpp segment; times in seconds from the start of the whole audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class RawTranscript:
    """What one whisper.cpp call produced (times already shifted by ``offset_s``)."""

    segments: tuple[RawSegment, ...]
    tokens: TokenArrays
    offset_s: float
    duration_s: float
    time_s: float


def _context_pointer(ctx: Any) -> int:
    """Address of the whisper_context inside pywhispercpp's wrapper object (0 = NULL).

    pywhispercpp returns a wrapper even when whisper.cpp fails to load and any later call on
    it dereferences NULL. The wrapper is a pybind11 instance of ``struct { whisper_context*
    ptr; }`` whose value pointer follows the object header (pybind11's simple layout).
    """
    if type(ctx) is not pw.whisper_context:
        raise ModelLoadError(f"unexpected context object {type(ctx).__name__}")
    holder = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    if not holder:
        return 0
    return ctypes.c_void_p.from_address(holder).value or 0


def _memory_estimate(info: ModelInfo) -> int:
    """Bytes a loaded context holds: weights plus KV caches and the logits buffer."""
    hp = info.hparams
    kv_self = 2 * 2 * hp.n_text_layer * hp.n_text_ctx * hp.n_text_state
    kv_cross = 2 * 2 * hp.n_text_layer * hp.n_audio_ctx * hp.n_text_state
    logits = 4 * hp.n_vocab * hp.n_text_ctx
    return int(info.file_size) + kv_self + kv_cross + logits


class LoadedModel:
    """A validated whisper.cpp model, loaded once; ``transcribe`` is thread-safe (one lock).

    ``audio_ctx`` (0 = the model's ``n_audio_ctx``) limits the encoder window; it must not
    exceed the model's. ``window_s`` is the audio one call can see.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        sha256: str | None = None,
        context: ContextOptions | None = None,
        audio_ctx: int = 0,
    ) -> None:
        self.path = Path(path)
        self.name = name or self.path.stem
        self.context_options = context or ContextOptions()
        # Raises ModelNotFoundError / ModelValidationError before whisper.cpp sees the file.
        self.info: ModelInfo = validate_model(self.path, sha256=sha256)
        if self.info.ftype == "f32":
            raise ModelValidationError(
                f"{self.path}: an all-f32 model file (f32 convolution weights) aborts whisper.cpp "
                "1.8 at its first inference; convert it with f16 weights (or quantize an f16 "
                "file) instead",
                code="backend_unsupported",
            )
        n_audio_ctx = int(self.info.hparams.n_audio_ctx)
        if isinstance(audio_ctx, bool) or not 0 <= audio_ctx <= n_audio_ctx:
            raise InvalidArgumentError(
                f"audio_ctx {audio_ctx} outside 0..{n_audio_ctx} (the model's n_audio_ctx)"
            )
        self.audio_ctx = audio_ctx or n_audio_ctx
        self.memory_bytes = _memory_estimate(self.info)
        self.lock = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self._ctx: Any = _init_context(self.path, self.context_options)
        self.token_eot = int(pw.whisper_token_eot(self._ctx))
        self.token_beg = int(pw.whisper_token_beg(self._ctx))

    @property
    def window_s(self) -> float:
        """Seconds of audio one call sees (``audio_ctx`` × 20 ms)."""
        return self.audio_ctx * SECONDS_PER_AUDIO_CTX

    def effective_audio_ctx(self, options: DecodeOptions) -> int:
        """The audio_ctx a call with ``options`` runs with (never above the loaded one)."""
        if options.audio_ctx > self.audio_ctx:
            raise InvalidArgumentError(
                f"audio_ctx {options.audio_ctx} exceeds {self.audio_ctx} of model {self.name}"
            )
        return options.audio_ctx or self.audio_ctx

    @property
    def closed(self) -> bool:
        """True once :meth:`close` freed the context."""
        return self._ctx is None

    def transcribe(
        self,
        samples: npt.NDArray[np.float32],
        options: DecodeOptions,
        *,
        offset_s: float = 0.0,
    ) -> RawTranscript:
        """Run whisper.cpp on 16 kHz float32 mono ``samples`` with exactly ``options``.

        Clips under :data:`~whisper_cascade.audio.MIN_SAMPLES` are zero-padded. Times in the
        result are shifted by ``offset_s``. Raises AudioError for unusable samples,
        BackendError when whisper.cpp fails or the model is closed.
        """
        samples = _checked_samples(samples)
        n_real = samples.shape[0]
        samples = pad_short(samples, MIN_SAMPLES)
        audio_ctx = self.effective_audio_ctx(options)
        offset_cs = round(offset_s * 100)
        with self.lock:
            if self._ctx is None:
                raise BackendError(f"model {self.name} is closed")
            params = _full_params(options, audio_ctx)
            start = time.perf_counter()
            rc = pw.whisper_full(self._ctx, params, samples, samples.shape[0])
            elapsed = time.perf_counter() - start
            if rc != 0:
                raise BackendError(f"whisper.cpp failed on model {self.name} (code {rc})")
            end_cs = offset_cs + round(n_real * 100 / SAMPLE_RATE)
            segments, tokens = self._read_result(offset_cs, end_cs)
        return RawTranscript(segments, tokens, offset_s, n_real / SAMPLE_RATE, elapsed)

    def _read_result(
        self, offset_cs: int, end_cs: int
    ) -> tuple[tuple[RawSegment, ...], TokenArrays]:
        """Segments and tokens of the last call, times shifted and kept inside the real audio
        (the model may place timestamps in the zero padding of its window)."""
        ctx = self._ctx

        def when(t: int) -> int:
            return -1 if t < 0 else min(max(int(t) + offset_cs, offset_cs), end_cs)

        builder = TokenArrays.builder()
        segments = []
        for i in range(pw.whisper_full_n_segments(ctx)):
            t0 = when(pw.whisper_full_get_segment_t0(ctx, i))
            t1 = when(pw.whisper_full_get_segment_t1(ctx, i))
            text = pw.whisper_full_get_segment_text(ctx, i).decode("utf-8", errors="replace")
            builder.add_segment(t0, t1, text)
            segments.append(RawSegment(t0 / 100.0, t1 / 100.0, text))
            for j in range(pw.whisper_full_n_tokens(ctx, i)):
                data = pw.whisper_full_get_token_data(ctx, i, j)
                token_id = int(data.id)
                flags = 0
                if token_id >= self.token_beg:
                    flags = FLAG_SPECIAL | FLAG_TIMESTAMP
                elif token_id >= self.token_eot:
                    flags = FLAG_SPECIAL
                piece = self._piece(token_id)
                builder.add_token(
                    token_id, piece, data.p, data.plog, when(data.t0), when(data.t1), flags
                )
        return tuple(segments), builder.build()

    def _piece(self, token_id: int) -> bytes:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = bytes(pw.whisper_token_to_bytes(self._ctx, token_id))
            self._pieces[token_id] = piece
        return piece

    def close(self) -> None:
        """Free the whisper.cpp context (waits for a running call); idempotent."""
        with self.lock:
            if self._ctx is not None:
                pw.whisper_free(self._ctx)
                self._ctx = None

    def __enter__(self) -> LoadedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            pw.whisper_free(ctx)
            self._ctx = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"audio_ctx={self.audio_ctx}"
        return f"LoadedModel({self.name!r}, {self.path}, {state})"


def _init_context(path: Path, options: ContextOptions) -> Any:
    cparams = pw.whisper_context_default_params()
    cparams.use_gpu = options.use_gpu
    cparams.flash_attn = options.flash_attn
    cparams.gpu_device = options.gpu_device
    with quiet_loading():
        ctx = pw.whisper_init_from_file_with_params(str(path), cparams)
    if _context_pointer(ctx) == 0:
        raise ModelLoadError(f"whisper.cpp could not load {path}")
    return ctx


def _checked_samples(samples: object) -> npt.NDArray[np.float32]:
    if not isinstance(samples, np.ndarray):
        raise AudioError(f"samples must be a numpy array, got {type(samples).__name__}")
    if samples.dtype != np.float32 or samples.ndim != 1:
        raise AudioError(
            f"samples must be 1-D float32 at 16 kHz (use load_audio), got {samples.dtype} "
            f"{samples.ndim}-D"
        )
    if samples.shape[0] == 0:
        raise AudioError("samples are empty")
    with np.errstate(invalid="ignore", over="ignore"):
        total = samples.sum(dtype=np.float64)
    if not np.isfinite(total):
        raise AudioError("samples contain NaN or Inf")
    return np.ascontiguousarray(samples)
