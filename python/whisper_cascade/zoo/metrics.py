"""Small measures for the zoo's benchmarks: rank AUC, condition buckets, ladder checks."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence

from whisper_cascade.errors import InvalidArgumentError

NOISE_BUCKETS = ((0, 9), (10, 19), (20, 30))
_NOISY = re.compile(r"^(white|pink|babble)(\d+)$")


def rank_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for the positive ``labels`` (Mann-Whitney U,
    ties counted half): the chance that a random positive scores above a random negative."""
    if len(scores) != len(labels):
        raise InvalidArgumentError("scores and labels differ in length")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise InvalidArgumentError("AUC needs at least one positive and one negative")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # average rank of a tie group
        i = j + 1
    pos_rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def condition_bucket(condition: str | None) -> str:
    """Reporting group of a corpus condition: ``pink13`` → ``pink 10-19 dB``; others as is."""
    if not condition:
        return "unspecified"
    m = _NOISY.match(condition)
    if not m:
        return condition
    snr = int(m.group(2))
    for lo, hi in NOISE_BUCKETS:
        if lo <= snr <= hi:
            return f"{m.group(1)} {lo}-{hi} dB"
    return f"{m.group(1)} >{NOISE_BUCKETS[-1][1]} dB"


def is_noisy(bucket: str) -> bool:
    """Whether a bucket is degraded speech (everything but ``clean``)."""
    return bucket not in ("clean", "unspecified")


def ladder_violations(
    ladder: Sequence[str],
    wer: Mapping[str, Mapping[str, float]],
    time_per_file: Mapping[str, float],
) -> list[str]:
    """The issue's ladder rules, as readable violations (empty = the ladder is monotone):
    on every noisy bucket each larger model has a lower WER than the one below it, and each
    takes more time per file."""
    problems = []
    for small, large in zip(ladder, ladder[1:], strict=False):
        if time_per_file[large] <= time_per_file[small]:
            problems.append(
                f"{large} is not slower than {small} "
                f"({time_per_file[large]:.3f} s vs {time_per_file[small]:.3f} s per file)"
            )
        for bucket, small_wer in wer[small].items():
            if not is_noisy(bucket) or bucket not in wer[large]:
                continue
            if wer[large][bucket] >= small_wer:
                problems.append(
                    f"{bucket}: {large} WER {100 * wer[large][bucket]:.1f}% "
                    f">= {small} {100 * small_wer:.1f}%"
                )
    return problems


def paired_wer_difference(
    small: Sequence[tuple[int, int]],
    large: Sequence[tuple[int, int]],
    draws: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """WER of ``large`` minus WER of ``small`` on the same files, with a 95 % paired-bootstrap
    interval: ``(difference, low, high)`` as fractions. Each sequence holds ``(edits,
    ref_words)`` per file, in the same file order. An interval that contains zero means the
    two models cannot be told apart on these files."""
    if len(small) != len(large):
        raise InvalidArgumentError("the two models were measured on different files")
    if not small:
        raise InvalidArgumentError("no files to compare")
    if draws < 100:
        raise InvalidArgumentError("at least 100 bootstrap draws")

    def diff(rows: Sequence[int]) -> float:
        words = sum(small[i][1] for i in rows) or 1
        return (sum(large[i][0] for i in rows) - sum(small[i][0] for i in rows)) / words

    rng = random.Random(seed)
    n = len(small)
    samples = sorted(diff([rng.randrange(n) for _ in range(n)]) for _ in range(draws))
    low = samples[int(0.025 * draws)]
    high = samples[min(draws - 1, int(0.975 * draws))]
    return diff(range(n)), low, high
