"""Realistic store contents for the report and dashboard tests.

Simulates a cascade over the ladder micro-s → micro-m → micro-l: per transcription one
JobRecord per model run, one DecisionRecord and one QualityRecord, as the cascade writes them.
The returned ground truth is counted here, independently of the report code.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field

from whisper_cascade.store import DecisionRecord, JobRecord, QualityRecord, Store

LADDER = ("micro-s", "micro-m", "micro-l")
RTF = {"micro-s": 0.05, "micro-m": 0.15, "micro-l": 0.45}  # processing seconds per audio second
# escalation probability from each rung, by noise level
ESCALATE = {"clean": 0.1, "moderate": 0.35, "noisy": 0.8}
NOW = 1_800_000_000.0


@dataclass
class Truth:
    transcriptions: int = 0
    escalated: int = 0
    runs: int = 0
    final: Counter[str] = field(default_factory=Counter)
    processing_s: float = 0.0
    cpu_seconds: float = 0.0
    time_saved_s: float = 0.0
    recent: int = 0  # created within the last hour before NOW


def populate(store: Store, n: int = 120, seed: int = 7, hours: float = 48.0) -> Truth:
    """Write ``n`` simulated transcriptions spread over ``hours`` before :data:`NOW`."""
    rng = random.Random(seed)
    truth = Truth()
    for i in range(n):
        created = NOW - hours * 3600 * (1 - i / n) + rng.uniform(0, 60)
        noise = rng.choice(["clean", "clean", "moderate", "noisy"])
        cls = f"{rng.choice(['short', 'medium'])}/{noise}/simple"
        audio = rng.uniform(3, 30)
        start = 1 if noise == "noisy" and rng.random() < 0.3 else 0
        rung = start
        runs: list[JobRecord] = []
        while True:
            model = LADDER[rung]
            took = audio * RTF[model] * rng.uniform(0.8, 1.25)
            escalate = rung < len(LADDER) - 1 and rng.random() < ESCALATE[noise]
            score = rng.uniform(0.2, 0.55) if escalate else rng.uniform(0.6, 0.98)
            if rung == len(LADDER) - 1 and noise == "noisy":
                score = rng.uniform(0.3, 0.7)
            runs.append(
                JobRecord(
                    job_id=f"job-{i:04d}", model=model, audio_duration_s=audio,
                    processing_time_s=took, score=score, content_class=cls,
                    cpu_seconds=took * rng.uniform(1.6, 2.0),
                    peak_memory_bytes=(rung + 1) * 200_000_000,
                    created_at=created + sum(r.processing_time_s for r in runs),
                )
            )  # fmt: skip
            if not escalate:
                break
            rung += 1
        total = sum(r.processing_time_s for r in runs)
        estimate = runs[-1].processing_time_s / RTF[runs[-1].model] * RTF["micro-l"]
        final = runs[-1]
        metrics = {"score": final.score, "threshold": 0.6, "largest_model": "micro-l"}
        reason = "accepted" if len(runs) == 1 else "low_score"
        for r in runs:
            store.record_job(r)
        store.record_decision(
            DecisionRecord(
                job_id=final.job_id, initial_model=LADDER[start], final_model=final.model,
                reason=reason, metrics_json=json.dumps(metrics), time_saved_s=estimate - total,
                created_at=created + total,
            )
        )  # fmt: skip
        wer = rng.uniform(0.0, 0.4) if i % 3 == 0 else None
        store.record_quality(
            QualityRecord(
                job_id=final.job_id, model=final.model, score=final.score, wer=wer,
                has_reference=wer is not None, created_at=created + total,
            )
        )  # fmt: skip
        truth.transcriptions += 1
        truth.escalated += len(runs) > 1
        truth.runs += len(runs)
        truth.final[final.model] += 1
        truth.processing_s += total
        truth.cpu_seconds += sum(r.cpu_seconds for r in runs)
        truth.time_saved_s += estimate - total
        truth.recent += created >= NOW - 3600
    return truth
