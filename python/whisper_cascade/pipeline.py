"""Single-model transcription of files, and the demo on the bundled sample.

This is the one-model path (``transcribe --model``); the cascade builds on the same pieces.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from importlib import resources

from whisper_cascade.audio import load_audio, sample_path
from whisper_cascade.backend import ContextOptions, DecodeOptions
from whisper_cascade.errors import ModelNotFoundError, WhisperCascadeError
from whisper_cascade.models import (
    BUNDLED_MODELS_PACKAGE,
    ModelSpec,
    bundled_ladders,
    bundled_models,
    resolve_model,
)
from whisper_cascade.transcriber import ProgressCallback, Transcriber, Transcription

DEFAULT_LADDER = "micro"
DEFAULT_LADDER_MODELS = ("micro-s", "micro-m", "micro-l")


def transcribe_files(
    sources: Iterable[str],
    *,
    model: str,
    models_dir: str | os.PathLike[str] | None = None,
    n_threads: int | None = None,
    context: ContextOptions | None = None,
    transcriber: Transcriber | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[Transcription | WhisperCascadeError]:
    """Transcribe each file with one model; yield a result, or the error, per file.

    ``progress(done_s, total_s)`` follows each file's chunks. A bad file does not stop the
    others. A model that cannot be found or loaded raises at once, before any file is read,
    since no file could succeed.
    """
    spec = resolve_model(model, models_dir)
    assert spec.path is not None
    runner = transcriber or Transcriber(context=context)
    options = _options_for(n_threads)
    # Load (and validate) once up front so a broken model fails before any audio is read.
    runner.pool.release(
        runner.pool.get(
            spec.path,
            name=spec.name,
            sha256=spec.sha256,
            context=context,
            audio_ctx=spec.audio_ctx or 0,
        )
    )
    for source in sources:
        try:
            audio = load_audio(source)
            yield runner.transcribe(
                spec.path,
                audio,
                options,
                name=spec.name,
                sha256=spec.sha256,
                audio_ctx=spec.audio_ctx or 0,
                progress=progress,
            )
        except WhisperCascadeError as exc:
            yield exc


def _options_for(n_threads: int | None) -> DecodeOptions:
    options = DecodeOptions()
    if n_threads is not None:
        options = replace(options, n_threads=n_threads)
    return options


def default_ladder() -> tuple[str, ...]:
    """The names of the default ladder's models, cheapest first."""
    return bundled_ladders().get(DEFAULT_LADDER, DEFAULT_LADDER_MODELS)


def demo(models_dir: str | os.PathLike[str] | None = None) -> int:
    """Transcribe the bundled sample with the cascade over the default ladder.

    When a model of the ladder cannot be found, say which files are needed and where they were
    looked for, and return 1.
    """
    sample = sample_path()
    print(f"sample: {sample}")
    specs: list[ModelSpec] = []
    missing: list[str] = []
    for name in default_ladder():
        try:
            specs.append(resolve_model(name, models_dir))
        except ModelNotFoundError as exc:
            missing.append(str(exc))
    if missing:
        where = f"the package's model folder ({resources.files(BUNDLED_MODELS_PACKAGE)})"
        print(
            f"the default ladder {DEFAULT_LADDER!r} needs the models "
            f"{', '.join(default_ladder())} (files ggml-<name>.bin), looked in {where} "
            "and the model folders below; they are not installed:",
        )
        for line in missing:
            print(f"  - {line}")
        if not bundled_models():
            print(
                "this build of whisper-cascade ships without the micro zoo; train it with "
                "`python -m whisper_cascade.zoo.train --all` (docs/zoo.md) or transcribe with "
                "your own model: whisper-cascade transcribe AUDIO --model PATH"
            )
        return 1
    from whisper_cascade.cascade import Cascade

    audio = load_audio(sample)
    with Cascade(DEFAULT_LADDER, models_dir=models_dir) as cascade:
        started = time.perf_counter()
        cascade.transcribe(audio)  # loads the models: a Cascade keeps them warm afterwards
        cold_ms = (time.perf_counter() - started) * 1000
        result = cascade.transcribe(audio)
    selection = result.model_selection
    print(f"first call (loads the models): {cold_ms:.0f} ms; second call, models warm:")
    print(f"text: {result.text}")
    for attempt in selection["decision_history"]:
        print(
            f"  {attempt['model']:<10} score {attempt.get('score') or 0.0:.2f}  "
            f"{(attempt.get('time_s') or 0.0) * 1000:7.1f} ms  {attempt.get('reason', '')}"
        )
    saved_ms = selection["processing_time_saved_s"] * 1000
    against = (
        f"saved {saved_ms:.0f} ms against" if saved_ms >= 0 else f"{-saved_ms:.0f} ms more than"
    )
    print(
        f"final model {selection['final_model']} ({selection['escalation_reason']}), "
        f"{selection['processing_time_s'] * 1000:.0f} ms, {against} the largest model alone"
    )
    sys.stdout.flush()
    return 0
