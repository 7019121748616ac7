"""Model cards of the micro zoo: the training record of a size and the markdown card.

:func:`training_summary` reads ``WORK/train-<size>.csv`` (steps, wall time, held-out WER of the
shipped checkpoint, what it trained on); :func:`write_card` writes ``<name>.md`` next to a
shipped file. :mod:`whisper_cascade.zoo.ship` calls both.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from whisper_cascade.modelfile import ModelInfo
    from whisper_cascade.zoo.ship import ShippedModel


# Step from which each size also trained on the slot-swapped corpus (mirrors zoo.train.SIZES,
# which needs torch); a card names that corpus only for a checkpoint trained past the step.
SWAPPED_FROM_STEP = {"s": 12_000}
VOICES_FROM_STEP = {"s": 15_000}
_FOUR_EXTRA = (
    "the four extra corpora (slot-swapped seeds 21, 22; new voices seeds 31, 32; 9 000 "
    "utterances each) 50% of each batch"
)
# What the shipped checkpoints of warm-started legs (zoo.train --init, or Recipe.grow_from)
# started from and trained on; used when the size's log starts with a warm start's evaluation
# row (no elapsed_s). Their logged steps count from the restart.
WARM_DATA = {
    "xs": "micro-xs of sessions 4-10 (step 9 500 of the 24 000 utterances, 1.22 h) restarted "
    "as step 8 000 of its cosine (lr 3.3e-4 falling to 7.5e-5; its step 10 000, 0.55 h), "
    "restarted again as step 9 000 of a 12 000-step cosine (lr 2.9e-4 falling to 7.5e-5; "
    "shipped: the last step), both legs on the 24 000 utterances with " + _FOUR_EXTRA,
    "s": "the shipped micro-xs (after both its legs) widened 2x with the same outputs (zoo.grow), "
    "then 2 000 steps (lr 2e-4 after 200 warm-up steps, cosine to 1e-5; shipped: the last "
    "step) on the 24 000 utterances with " + _FOUR_EXTRA,
    "m": "the session-12 micro-s (trained from scratch, then two warm legs) widened 2x with the "
    "same outputs (zoo.grow), then 2 400 steps (lr 1.2e-4 after 200 warm-up steps, cosine to "
    "6e-6; shipped: the last step) on the 24 000 utterances with " + _FOUR_EXTRA,
}
TRAINING_DATA = "24 000 synthetic utterances (8 000 sentences x 3 conditions)"
SWAPPED_DATA = "9 000 slot-swapped utterances (3 000 sentences x 3), 30% of each batch"
VOICES_DATA = (
    "9 000 utterances in 42 more espeak-ng variants; swapped and new-voice utterances "
    "20% of each batch each"
)


def training_summary(work: Path, size: str) -> dict[str, Any]:
    """Steps, wall time and held-out WER of a size's shipped checkpoint (the best one, or the
    one ``WORK/micro-<size>/best.json`` names), from ``WORK/train-<size>.csv``."""
    log = work / f"train-{size}.csv"
    if not log.is_file():
        return {}
    with log.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    wers = [(float(r["wer"]), int(r["step"])) for r in rows if r.get("wer")]
    best: tuple[float | None, int] | None = min(wers) if wers else None
    chosen = work / f"micro-{size}" / "best.json"  # written by zoo.train --promote-last
    if chosen.is_file():
        step = int(json.loads(chosen.read_text(encoding="utf-8"))["step"])
        best = next(((w, s) for w, s in wers if s == step), (None, step))
    # elapsed_s restarts at 0 with every resumed run: add up each run's last value.
    seconds, previous = 0.0, 0.0
    for row in rows:
        if not row.get("elapsed_s"):
            continue  # a warm start's evaluation of its starting point
        elapsed = float(row["elapsed_s"])
        if elapsed < previous:
            seconds += previous
        previous = elapsed
    warm = size in WARM_DATA and not rows[0].get("elapsed_s")
    data = WARM_DATA[size] if warm else TRAINING_DATA
    swapped_from = SWAPPED_FROM_STEP.get(size)
    if not warm and best and swapped_from is not None and best[1] > swapped_from:
        data += f"; from step {swapped_from:,} also {SWAPPED_DATA}"
    voices_from = VOICES_FROM_STEP.get(size)
    if not warm and best and voices_from is not None and best[1] > voices_from:
        data += f"; from step {voices_from:,} also {VOICES_DATA}"
    return {
        "steps": int(rows[-1]["step"]),
        "train_seconds": seconds + previous,
        "best_heldout_wer": best[0] if best else None,
        "best_step": best[1] if best else None,
        "wer_curve": [(s, w) for w, s in wers],
        "data": data,
    }


def write_card(out: Path, model: ShippedModel, info: ModelInfo, training: dict[str, Any]) -> Path:
    """Write the markdown model card ``<out>/<name>.md``."""
    hp = info.hparams
    lines = [
        f"# {model.name}",
        "",
        "A Whisper-architecture model of the micro zoo, trained on synthetic speech of the",
        "closed domain (`whisper_cascade/data/grammar.json`), see docs/zoo.md.",
        "",
        "| field | value |",
        "|---|---|",
        f"| file | `{model.file}` ({model.file_bytes:,} bytes, {model.gzip_bytes:,} gzip -9) |",
        f"| sha256 | `{model.sha256}` |",
        f"| type | {model.ftype} |",
        f"| parameters | {model.n_parameters:,} |",
        f"| d_model / heads | {hp.n_audio_state} / {hp.n_audio_head} |",
        f"| encoder + decoder layers | {hp.n_audio_layer} + {hp.n_text_layer} |",
        f"| vocabulary | {hp.n_vocab} (English-only; unused rows zero) |",
        f"| window | {model.window_s:g} s (`audio_ctx` {model.audio_ctx}) |",
        f"| relative cost | {model.relative_cost:.2f} (micro-s = 1.0) |",
        f"| whisper.cpp time per utterance | {1000 * model.time_per_utt_s:.0f} ms (1 thread) |",
    ]
    if training:
        lines += [
            f"| training steps | checkpoint of step {training['best_step']} "
            f"({training['steps']:,} logged, batch 24) |",
            f"| training time | {training['train_seconds'] / 3600:.2f} h "
            "(wall clock, all resumed runs) |",
            f"| training data | {training.get('data', TRAINING_DATA)} |",
        ]
        if training.get("best_heldout_wer") is not None:
            lines.append(
                f"| PyTorch held-out WER | {100 * training['best_heldout_wer']:.1f}% "
                f"(step {training['best_step']}) |"
            )
    else:
        lines += _kept_training_rows(out / f"{model.name}.md", model.sha256)
    if model.wer is not None:
        lines += ["", "## WER (whisper.cpp, greedy, held-out sentences)", ""]
        lines += ["| condition | WER |", "|---|---:|", f"| all | {100 * model.wer:.1f}% |"]
        lines += [f"| {k} | {100 * v:.1f}% |" for k, v in sorted(model.wer_by_condition.items())]
    card = out / f"{model.name}.md"
    card.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return card


def _kept_training_rows(card: Path, sha256: str) -> list[str]:
    """The training rows of an existing card for the same file: re-shipping an unchanged
    model without its training log keeps its training record."""
    if not card.is_file():
        return []
    text = card.read_text(encoding="utf-8")
    if f"`{sha256}`" not in text:
        return []
    keep = ("| training ", "| PyTorch held-out WER ")
    return [line for line in text.splitlines() if line.startswith(keep)]
