"""The guarded whisper.cpp backend, on real whisper.cpp with tiny random-weight models."""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import _pywhispercpp as pw
import numpy as np
import pytest

from whisper_cascade.audio import SAMPLE_RATE, load_audio, sample_path
from whisper_cascade.backend import (
    ContextOptions,
    DecodeOptions,
    LoadedModel,
    RawTranscript,
    _init_context,
)
from whisper_cascade.backend_pool import ModelPool
from whisper_cascade.confidence import FLAG_SPECIAL, FLAG_TIMESTAMP
from whisper_cascade.errors import (
    AudioError,
    BackendError,
    InvalidArgumentError,
    ModelLoadError,
    ModelNotFoundError,
    ModelValidationError,
    StateError,
)
from whisper_cascade.ggml_writer import (
    TINY_RANDOM_DIMS,
    random_state_dict,
    random_whisper_model,
    write_ggml_model,
)
from whisper_cascade.transcriber import Transcriber, plan_chunks, transcribe_with_model

FAST = DecodeOptions(max_tokens=6, n_threads=2)
CTX10 = 500  # encoder positions of a 10 s window


def make_model(path: Path, seed: int = 0) -> Path:
    return random_whisper_model(path, seed=seed)  # tiny dims, n_audio_ctx 1500 (30 s)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    for seed in range(3):
        make_model(d / f"tiny{seed}.bin", seed=seed)
    return d


@pytest.fixture(scope="session")
def model(model_dir: Path) -> Iterator[LoadedModel]:
    m = LoadedModel(model_dir / "tiny0.bin", name="tiny0", audio_ctx=CTX10)
    yield m
    m.close()


@pytest.fixture(scope="session")
def speech() -> np.ndarray:
    return load_audio(sample_path()).samples


def espeak(text: str, tmp: Path) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    out = tmp / "say.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(out), text], check=True, timeout=60)
    return load_audio(out).samples


def as_tuple(raw: RawTranscript) -> tuple[object, ...]:
    t = raw.tokens
    return (t.token_ids.tolist(), t.probs.tolist(), t.t0.tolist(), t.segment_texts)


# --- loading -------------------------------------------------------------------------------


def test_loaded_model_properties(model: LoadedModel) -> None:
    assert model.name == "tiny0"
    assert model.audio_ctx == CTX10 and model.window_s == pytest.approx(10.0)
    assert model.info.hparams.n_audio_ctx == 1500
    assert model.memory_bytes > model.info.file_size
    assert model.token_beg > model.token_eot
    assert "tiny0" in repr(model)


def _first_tensor_offset(data: bytes) -> int:
    n_mel, n_fft = struct.unpack_from("<2i", data, 48)
    pos = 56 + 4 * n_mel * n_fft
    (n_tokens,) = struct.unpack_from("<i", data, pos)
    pos += 4
    for _ in range(n_tokens):
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4 + length
    return pos


def _patched(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack("<i", value) + data[offset + 4 :]


def test_bad_models_refused_before_loading(tmp_path: Path, model_dir: Path) -> None:
    # Each of these killed the process when handed to whisper.cpp (backend-hazards.md).
    good = (model_dir / "tiny0.bin").read_bytes()
    tensor = _first_tensor_offset(good)
    crafted = {
        "magic.bin": (b"ggml" + good[4:], "bad_magic"),  # byte-swapped magic
        "vocab.bin": (_patched(good, 4, 50300), "bad_hparams"),
        "ftype.bin": (_patched(good, 44, 5), "bad_ftype"),
        "ndims.bin": (_patched(good, tensor, 6), "bad_tensor_dims"),
        "huge_dim.bin": (_patched(good, tensor + 12, 2**30), "bad_tensor_shape"),
        "truncated.bin": (good[: len(good) // 2], "truncated"),
        "empty.bin": (b"", "truncated"),
    }
    for name, (data, code) in crafted.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelValidationError) as info:
            LoadedModel(tmp_path / name)
        assert info.value.code == code, name
    # A valid all-f32 file loads, then aborts the process at the first convolution.
    f32 = tmp_path / "f32.bin"
    write_ggml_model(f32, TINY_RANDOM_DIMS, random_state_dict(TINY_RANDOM_DIMS), use_f16=False)
    with pytest.raises(ModelValidationError, match="all-f32") as info:
        LoadedModel(f32)
    assert info.value.code == "backend_unsupported"
    with pytest.raises(ModelNotFoundError):
        LoadedModel(tmp_path / "missing.bin")
    with pytest.raises(ModelValidationError, match="sha256|checksum"):
        LoadedModel(model_dir / "tiny0.bin", sha256="0" * 64)


def test_sha256_accepted(model_dir: Path, model: LoadedModel) -> None:
    with LoadedModel(model_dir / "tiny0.bin", sha256=model.info.sha256, audio_ctx=CTX10) as m:
        assert not m.closed
    assert m.closed


def test_load_failure_is_model_load_error(tmp_path: Path) -> None:
    # whisper.cpp returns NULL here; the wrapper must not be used afterwards.
    with pytest.raises(ModelLoadError):
        _init_context(tmp_path / "missing.bin", ContextOptions(use_gpu=False))


def test_audio_ctx_bounds(model_dir: Path, model: LoadedModel, speech: np.ndarray) -> None:
    with pytest.raises(InvalidArgumentError):
        LoadedModel(model_dir / "tiny0.bin", audio_ctx=1501)
    with pytest.raises(InvalidArgumentError):
        model.transcribe(speech, DecodeOptions(audio_ctx=CTX10 + 1))


# --- inference and tokens ------------------------------------------------------------------


def test_transcribe_tokens_consistent(model: LoadedModel, speech: np.ndarray) -> None:
    raw = model.transcribe(speech, FAST)
    t = raw.tokens
    n = t.n_tokens
    assert n > 0 and raw.segments
    for arr in (t.probs, t.logprobs, t.t0, t.t1, t.segment_index, t.flags):
        assert arr.shape == (n,)
    assert len(t.token_bytes) == n
    assert len(t.segment_texts) == len(t.segment_t0) == len(t.segment_t1) == len(raw.segments)
    assert np.all(np.diff(t.segment_index) >= 0)
    assert t.segment_index.min() >= 0 and t.segment_index.max() < len(raw.segments)
    assert np.all((t.probs >= 0) & (t.probs <= 1))
    np.testing.assert_allclose(np.exp(t.logprobs), t.probs, rtol=1e-3, atol=1e-7)
    for token_id, flags, piece in zip(t.token_ids, t.flags, t.token_bytes, strict=True):
        if token_id >= model.token_beg:
            assert flags == FLAG_SPECIAL | FLAG_TIMESTAMP
        elif token_id >= model.token_eot:
            assert flags == FLAG_SPECIAL
        else:
            assert flags == 0
        assert piece == pw.whisper_token_to_bytes(model._ctx, int(token_id))
    for s, text in enumerate(t.segment_texts):
        rows = zip(t.token_bytes, t.segment_index, t.flags, strict=True)
        words = b"".join(piece for piece, i, f in rows if i == s and f == 0)
        assert words.decode("utf-8", "replace") == text
    end = speech.shape[0] / SAMPLE_RATE
    for seg in raw.segments:
        assert 0.0 <= seg.start <= seg.end <= end + 0.01
    known = t.t0[t.t0 >= 0]
    assert np.all(known <= round(end * 100))


def test_offset_shifts_times(model: LoadedModel, speech: np.ndarray) -> None:
    a = model.transcribe(speech, FAST)
    b = model.transcribe(speech, FAST, offset_s=12.5)
    assert a.tokens.token_ids.tolist() == b.tokens.token_ids.tolist()
    assert [s.start + 12.5 for s in a.segments] == pytest.approx([s.start for s in b.segments])
    assert b.offset_s == 12.5


def test_deterministic(model: LoadedModel, speech: np.ndarray) -> None:
    assert as_tuple(model.transcribe(speech, FAST)) == as_tuple(model.transcribe(speech, FAST))


def test_fresh_params_every_call(model: LoadedModel, speech: np.ndarray) -> None:
    short = DecodeOptions(max_tokens=1, n_threads=2, token_timestamps=False)
    first = model.transcribe(speech, short)
    other = model.transcribe(speech, DecodeOptions(max_tokens=8, beam_size=2, n_threads=2))
    again = model.transcribe(speech, short)
    assert as_tuple(first) == as_tuple(again)
    assert as_tuple(first) != as_tuple(other)
    assert (first.tokens.t0 == -1).all()  # token timestamps off did not stick from/to others
    assert (other.tokens.t0[other.tokens.flags == 0] >= 0).all()


def test_bad_samples_never_reach_whisper(model: LoadedModel) -> None:
    bad = {
        "float64": np.zeros(20000),
        "2-D": np.zeros((2, 20000), np.float32),
        "empty": np.zeros(0, np.float32),
        "nan": np.full(20000, np.nan, np.float32),
        "list": [0.0] * 20000,
    }
    for samples in bad.values():
        with pytest.raises(AudioError):
            model.transcribe(samples, FAST)  # type: ignore[arg-type]


def test_tiny_clip_is_padded(model: LoadedModel) -> None:
    for n in (1, 160, 3199):
        raw = model.transcribe(np.full(n, 0.1, np.float32), FAST)
        assert raw.duration_s == pytest.approx(n / SAMPLE_RATE)
        assert all(s.end <= n / SAMPLE_RATE + 0.01 for s in raw.segments)


def test_closed_model_raises(model_dir: Path, speech: np.ndarray) -> None:
    m = LoadedModel(model_dir / "tiny1.bin", audio_ctx=CTX10)
    m.close()
    m.close()
    with pytest.raises(BackendError, match="closed"):
        m.transcribe(speech, FAST)


def test_decode_options_validation() -> None:
    bad = [
        {"n_threads": -1},
        {"beam_size": 17},
        {"best_of": 0},
        {"temperature": 3.0},
        {"temperature": float("nan")},
        {"language": "xx"},
        {"max_tokens": True},
        {"n_max_text_ctx": -1},
        {"patience": float("inf")},
    ]
    for kwargs in bad:
        with pytest.raises(InvalidArgumentError):
            DecodeOptions(**kwargs)  # type: ignore[arg-type]
    assert DecodeOptions().greedy and not DecodeOptions(beam_size=4).greedy
    assert DecodeOptions(language="auto").to_dict()["language"] == "auto"
    with pytest.raises(InvalidArgumentError):
        ContextOptions(gpu_device=-1)


# --- threads -------------------------------------------------------------------------------


def test_concurrent_calls_match_sequential(model: LoadedModel, speech: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    inputs = [speech, (rng.standard_normal(2 * SAMPLE_RATE) * 0.1).astype(np.float32)]
    options = DecodeOptions(max_tokens=4, n_threads=1)
    expected = [as_tuple(model.transcribe(x, options)) for x in inputs]
    results: dict[tuple[int, int], tuple[object, ...]] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for rep in range(2):
                for i, x in enumerate(inputs):
                    results[(worker, rep * 10 + i)] = as_tuple(model.transcribe(x, options))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 8
    for (_, k), got in results.items():
        assert got == expected[k % 10]


# --- pool ----------------------------------------------------------------------------------


def test_pool_reuses_and_evicts_lru(model_dir: Path) -> None:
    paths = [model_dir / f"tiny{i}.bin" for i in range(3)]
    with ModelPool(max_models=2) as pool:
        a = pool.get(paths[0], audio_ctx=CTX10)
        pool.release(a)
        assert pool.get(paths[0], audio_ctx=CTX10) is a  # resident: no reload
        pool.release(a)
        with pool.use(paths[1], audio_ctx=CTX10) as b:
            assert b is not a
        # touch a so that b is least recently used
        with pool.use(paths[0], audio_ctx=CTX10):
            pass
        with pool.use(paths[2], audio_ctx=CTX10) as c:
            assert b.closed and not a.closed and not c.closed
        assert pool.loads == 3 and pool.evictions == 1
        assert len(pool) == 2
        assert pool.resident() == [a, c]


def test_pool_never_frees_a_pinned_model(
    model_dir: Path, model: LoadedModel, speech: np.ndarray
) -> None:
    one = model.memory_bytes  # every test model has the same size
    with ModelPool(max_bytes=one + one // 2) as pool:  # room for one model
        a = pool.get(model_dir / "tiny0.bin", audio_ctx=CTX10)
        b = pool.get(model_dir / "tiny1.bin", audio_ctx=CTX10)
        assert not a.closed and not b.closed  # both pinned: over budget for now
        assert pool.resident_bytes > pool.max_bytes  # type: ignore[operator]
        assert a.transcribe(speech, FAST).tokens.n_tokens > 0
        pool.release(a)
        assert a.closed and not b.closed
        pool.release(b)
        with pytest.raises(StateError):
            pool.release(b)
    assert b.closed
    with pytest.raises(StateError):
        pool.get(model_dir / "tiny0.bin")


def test_pool_is_thread_safe(model_dir: Path, speech: np.ndarray) -> None:
    got: list[LoadedModel] = []
    with ModelPool() as pool:

        def work() -> None:
            with pool.use(model_dir / "tiny2.bin", audio_ctx=CTX10) as m:
                m.transcribe(speech, FAST)
                got.append(m)

        threads = [threading.Thread(target=work) for _ in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(got) == 3 and all(m is got[0] for m in got)
        assert pool.loads == 1


def test_pool_arguments() -> None:
    with pytest.raises(InvalidArgumentError):
        ModelPool(max_bytes=0)
    with pytest.raises(InvalidArgumentError):
        ModelPool(max_models=0)


# --- whole-audio transcription -------------------------------------------------------------


def test_transcription_shape(model: LoadedModel) -> None:
    audio = load_audio(sample_path())
    result = transcribe_with_model(model, audio, FAST)
    d = result.to_dict()
    assert set(d) == {"audio", "text", "segments", "confidence", "model", "time_s"}
    assert d["audio"] == str(sample_path()) and d["model"] == "tiny0"
    assert d["text"] == " ".join(s["text"] for s in d["segments"] if s["text"])
    for seg in d["segments"]:
        assert set(seg) == {"start", "end", "text", "words"}
        for w in seg["words"]:
            assert set(w) == {"word", "start", "end", "probability"}
            assert 0.0 <= w["probability"] <= 1.0
    assert d["confidence"]["n_tokens"] >= 0
    assert 0.0 <= result.no_speech_estimate < 1.0
    assert result.duration_s == audio.duration_s


def test_silence_fast_path(model: LoadedModel) -> None:
    audio = load_audio(np.zeros(3600 * SAMPLE_RATE, np.float32))
    started = time.perf_counter()
    result = transcribe_with_model(model, audio, FAST)
    assert time.perf_counter() - started < 10.0
    assert result.text == "" and result.segments == ()
    assert result.no_speech_estimate == 1.0
    assert result.duration_s == 3600.0


def test_short_clip(model: LoadedModel) -> None:
    audio = load_audio(np.full(160, 0.2, np.float32))
    result = transcribe_with_model(model, audio, FAST)
    assert all(s.end <= 0.01 + 1e-9 for s in result.segments)


def _long_signal(seconds: int, speech: np.ndarray) -> np.ndarray:
    x = np.zeros(seconds * SAMPLE_RATE, np.float32)
    pos = 0
    while pos + speech.shape[0] < x.shape[0]:
        x[pos : pos + speech.shape[0]] = speech
        pos += speech.shape[0] + SAMPLE_RATE // 2  # half-second pauses
    return x


def test_long_audio_is_chunked_without_gaps(model: LoadedModel, speech: np.ndarray) -> None:
    audio = load_audio(_long_signal(65, speech))
    seen: list[tuple[float, float]] = []
    result = transcribe_with_model(
        model, audio, FAST, progress=lambda done, total: seen.append((done, total))
    )
    chunks = result.chunks
    assert seen == [(b, 65.0) for _, b in chunks]
    assert chunks[0][0] == 0.0 and chunks[-1][1] == pytest.approx(65.0)
    for (_, a1), (b0, _) in zip(chunks, chunks[1:], strict=False):
        assert a1 == b0  # contiguous: no audio skipped
    assert all(0 < b - a <= model.window_s for a, b in chunks)
    assert len(chunks) >= 7
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts)
    assert all(0.0 <= s.start <= s.end <= 65.0 for s in result.segments)
    assert {min(int(s.start // 10), 6) for s in result.segments} >= {0, 3, 6}


def test_plan_chunks_cuts_in_pauses(speech: np.ndarray) -> None:
    from whisper_cascade.features import analyze

    x = _long_signal(40, speech)
    segs = [(float(a), float(b)) for a, b in analyze(x).speech_segments]
    chunks = plan_chunks(x, 10.0, segs)
    assert chunks[0][0] == 0 and chunks[-1][1] == x.shape[0]
    for lo, hi in chunks[:-1]:
        assert hi - lo <= 10 * SAMPLE_RATE
        around = x[hi - 160 : hi + 160]
        assert np.abs(around).max() < 1e-3  # the cut falls in a pause


def test_plan_chunks_without_pauses_cuts_at_quietest() -> None:
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(25 * SAMPLE_RATE) * 0.3).astype(np.float32)
    x[9 * SAMPLE_RATE : 9 * SAMPLE_RATE + 320] *= 0.01  # one quiet 20 ms frame
    chunks = plan_chunks(x, 10.0, [(0.0, 25.0)])
    assert abs(chunks[0][1] - (9 * SAMPLE_RATE + 160)) <= 320
    assert [c[0] for c in chunks[1:]] == [c[1] for c in chunks[:-1]]
    assert chunks[-1][1] == x.shape[0]
    with pytest.raises(InvalidArgumentError):
        plan_chunks(x, 1.0, [])


def test_espeak_sentence(model: LoadedModel, tmp_path: Path) -> None:
    samples = espeak("please turn off the lights in the living room", tmp_path)
    result = transcribe_with_model(model, load_audio(samples), FAST)
    assert result.no_speech_estimate < 0.9
    assert result.segments


def test_transcriber_uses_the_pool(model_dir: Path) -> None:
    audio = load_audio(sample_path())
    with ModelPool(max_models=1) as pool:
        tr = Transcriber(pool, context=ContextOptions(use_gpu=False))
        a = tr.transcribe(model_dir / "tiny1.bin", audio, FAST, name="one", audio_ctx=CTX10)
        b = tr.transcribe(model_dir / "tiny1.bin", audio, FAST, name="one", audio_ctx=CTX10)
        assert pool.loads == 1 and a.model == "one"
        assert a.text == b.text and a.confidence == b.confidence
