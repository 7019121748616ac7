"""The cascade benchmark of issue 4: every strategy on the same held-out files, in one run.

    .venv/bin/python bench/bench_cascade.py --models-dir python/whisper_cascade/data/models \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl \
        --manifest /work/zoo-work/corpus/heldout-unseen/manifest.jsonl \
        [--ladder micro] [--preset balanced] [--threads 1] [--n N] [--json OUT] [--update-readme]

Strategies: ``always-<smallest>``, ``always-<largest>``, ``oracle``, ``static cascade``
(whole-file escalation) and ``segment cascade`` (weak spans re-transcribed by the next rung).
The oracle takes, per file, among the rungs whose WER on that file is no worse than the
largest's, the one that was quickest on that file (the measured cost, so the oracle is never
slower than always-largest); the time of the lowest such rung in ladder order is reported
beside it (``ladder_pick_time_s``). With well separated costs the two agree.

Every model of the ladder runs once per file (its transcript, score and wall time cached); the
always-X strategies and the oracle are derived from that cache, so the oracle's time is the
time of the model it picks, with no cost for knowing which. Both cascades really run.

Fairness: all five runs of a file (each rung, then the two cascades) happen back to back, and
their order is rotated by one position from file to file, so drift in machine load (other jobs,
thermal state) spreads evenly over the strategies instead of landing on whichever ran last.
Before timing, every model and both cascades run once on the first file (loads, first-call
allocations); the cascades' analysis caches are emptied afterwards. All runs share one model
pool and the same decoding options (greedy, ``--threads`` threads, each rung's ``audio_ctx``).

Selection overhead of a cascade = ``processing_time_s`` − the sum of ``time_s`` of its attempts
in ``decision_history``: analysis (its call through the cache), pre-selection, scoring and
decisions. The transcriber's own speech analysis, which every strategy pays, stays inside
model time for the single-model runs; a cascade runs that analysis once and hands the features
to every attempt, so it lands in the cascade's overhead instead. The report therefore also gives
the overhead without it (the cascade's analyzer is timed per file): the cost of selecting
proper. The native feature analysis is also timed alone, once per file.

A file whose audio or run fails is counted per strategy (``failed``) with an empty hypothesis
(every reference word a deletion), as ``whisper-cascade eval`` does; the run goes on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from whisper_cascade.audio import SAMPLE_RATE, Audio, load_audio
from whisper_cascade.backend import DecodeOptions
from whisper_cascade.backend_pool import ModelPool
from whisper_cascade.breaker import AnalysisCache
from whisper_cascade.cascade import Cascade
from whisper_cascade.evaluation import SCORE_PASS, word_edits
from whisper_cascade.features import AudioFeatures, analyze
from whisper_cascade.ladders import Ladder, get_ladder
from whisper_cascade.manifest import ManifestItem, read_manifest
from whisper_cascade.models import ModelSpec, resolve_model
from whisper_cascade.policy import score
from whisper_cascade.presets import Preset, get_preset
from whisper_cascade.transcriber import Transcriber
from whisper_cascade.zoo.metrics import condition_bucket

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import publish  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Cascade"
STATIC, SEGMENT, ORACLE = "static cascade", "segment cascade", "oracle"
CASCADES = (STATIC, SEGMENT)
TARGET_LARGEST, TARGET_ORACLE, TARGET_WER_POINTS, TARGET_OVERHEAD = 0.25, 1.2, 0.5, 0.02


@dataclass(frozen=True)
class BenchItem:
    """One utterance and the manifest it came from (its folder name)."""

    item: ManifestItem
    manifest: str


def load_items(manifests: Sequence[str | Path], n: int | None = None) -> list[BenchItem]:
    """The first ``n`` utterances (all when None) of each manifest."""
    out: list[BenchItem] = []
    for manifest in manifests:
        items = read_manifest(manifest)
        label = Path(manifest).expanduser().absolute().parent.name
        out += [BenchItem(i, label) for i in (items[:n] if n else items)]
    return out


def _record(
    ref: str, text: str, time_s: float, model: str | None, error: str | None = None, **kw: Any
) -> dict[str, Any]:
    edits, words = word_edits(ref, text)
    base = {"text": text, "time_s": time_s, "model": model, "edits": edits, "ref_words": words}
    return base | kw | {"error": error}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _Runner:
    """Runs one rung or one cascade on one file and returns its record."""

    def __init__(
        self,
        ladder: Ladder,
        preset: Preset,
        models_dir: str | Path | None,
        threads: int,
    ) -> None:
        self.ladder = ladder
        self.preset = preset
        self.pool = ModelPool()
        self.transcriber = Transcriber(self.pool)
        self.options = DecodeOptions(n_threads=threads)
        self.specs: dict[str, ModelSpec | Exception] = {}
        for spec in ladder.models:
            try:
                found = spec if spec.path is not None else resolve_model(spec.name, models_dir)
                self.specs[spec.name] = replace(found, relative_cost=spec.relative_cost)
            except Exception as exc:  # reported per file as a failed run
                self.specs[spec.name] = exc
        common: dict[str, Any] = {"models_dir": models_dir, "n_threads": threads, "pool": self.pool}
        self.analysis_s: dict[str, float] = {}
        self.cascades = {
            unit: Cascade(
                ladder, preset, segment_escalation=segmented, analyzer=self._timed(unit), **common
            )
            for unit, segmented in ((STATIC, False), (SEGMENT, True))
        }

    def _timed(self, unit: str) -> Callable[[Audio], AudioFeatures]:
        """The cascade's analyzer, timed: its time is the part of the overhead that the
        transcriber would pay anyway (the cascade hands it the features)."""

        def analyzer(audio: Audio) -> AudioFeatures:
            started = time.perf_counter()
            try:
                return analyze(audio.samples, SAMPLE_RATE)
            finally:
                self.analysis_s[unit] = self.analysis_s.get(unit, 0.0) + (
                    time.perf_counter() - started
                )

        return analyzer

    def units(self) -> list[str]:
        return [*self.ladder.names, STATIC, SEGMENT]

    def run(self, unit: str, audio: Audio, ref: str, feats: AudioFeatures | None) -> dict[str, Any]:
        if unit in self.cascades:
            return self._cascade(unit, audio, ref)
        spec = self.specs[unit]
        started = time.perf_counter()
        try:
            if isinstance(spec, Exception):
                raise spec
            assert spec.path is not None
            tr = self.transcriber.transcribe(
                spec.path,
                audio,
                self.options,
                name=spec.name,
                sha256=spec.sha256,
                audio_ctx=spec.audio_ctx or 0,
            )
            elapsed = time.perf_counter() - started
            quality = score(tr.confidence, feats, self.preset.weights_for(unit)).value
        except Exception as exc:
            return _record(ref, "", time.perf_counter() - started, unit, _error(exc))
        return _record(ref, tr.text, elapsed, unit, score=quality)

    def _cascade(self, unit: str, audio: Audio, ref: str) -> dict[str, Any]:
        self.analysis_s[unit] = 0.0
        started = time.perf_counter()
        try:
            result = self.cascades[unit].transcribe(audio)
        except Exception as exc:
            return _record(ref, "", time.perf_counter() - started, None, _error(exc))
        sel = result.model_selection
        history = sel["decision_history"]
        total = float(sel["processing_time_s"])
        model_time = sum(float(h["time_s"]) for h in history)
        runs = [f"{h['model']}/{h['scope']}" for h in history if h["score"] is not None]
        return _record(
            ref,
            result.text,
            total,
            str(sel["final_model"]),
            score=float(sel["decision_metrics"]["score"]),
            escalations=int(sel["escalation_count"]),
            reason=sel["escalation_reason"],
            overhead_s=max(0.0, total - model_time),
            net_overhead_s=max(0.0, total - model_time - self.analysis_s[unit]),
            runs=runs,
        )

    def warm_up(self, audio: Audio) -> None:
        for unit in self.units():
            self.run(unit, audio, "", None)
        for cascade in self.cascades.values():
            cascade.analysis_cache = AnalysisCache()

    def close(self) -> None:
        for cascade in self.cascades.values():
            cascade.close()
        self.pool.close()


def _oracle(records: dict[str, dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """The quickest rung on this file (ties: the lower rung) among those with at most the
    largest rung's edits; ``ladder_pick_time_s`` is the time of the lowest such rung."""
    largest = records[names[-1]]
    good = [records[n] for n in names if records[n]["error"] is None]
    good = [r for r in good if r["edits"] <= largest["edits"]]
    if not good:
        return largest | {"error": "no rung produced a transcript", "ladder_pick_time_s": 0.0}
    pick = min(good, key=lambda r: r["time_s"])  # min keeps the first (lowest rung) on ties
    return pick | {"ladder_pick_time_s": good[0]["time_s"]}


def measure_file(runner: _Runner, entry: BenchItem, rotation: int) -> dict[str, Any]:
    """All strategies on one file, runs in rotated order; a failure is recorded, not raised."""
    item = entry.item
    out: dict[str, Any] = {
        "audio": item.audio,
        "manifest": entry.manifest,
        "condition": item.condition,
        "analysis_s": None,
        "error": None,
    }
    names = runner.ladder.names
    records: dict[str, dict[str, Any]] = {}
    try:
        audio = load_audio(item.path)
    except Exception as exc:
        out["error"] = _error(exc)
        for unit in runner.units():
            records[unit] = _record(item.text, "", 0.0, None, _error(exc))
    else:
        feats: AudioFeatures | None = None
        try:
            t0 = time.perf_counter()
            feats = analyze(audio.samples, SAMPLE_RATE)
            out["analysis_s"] = time.perf_counter() - t0
        except Exception as exc:
            out["error"] = _error(exc)
        units = runner.units()
        k = rotation % len(units)
        for unit in units[k:] + units[:k]:
            records[unit] = runner.run(unit, audio, item.text, feats)
    strategies = {
        f"always-{names[0]}": records[names[0]],
        f"always-{names[-1]}": records[names[-1]],
        ORACLE: _oracle(records, names),
        STATIC: records[STATIC],
        SEGMENT: records[SEGMENT],
    }
    out["models"] = {n: records[n] for n in names}
    out["strategies"] = strategies
    return out


def _wer(records: Sequence[dict[str, Any]]) -> float:
    words = sum(r["ref_words"] for r in records)
    edits = sum(r["edits"] for r in records)
    return edits / words if words else float(edits > 0)


def _summary(name: str, files: Sequence[dict[str, Any]]) -> dict[str, Any]:
    recs = [f["strategies"][name] for f in files]
    ok = [r for r in recs if r["error"] is None]
    scored = [r for r in ok if r.get("score") is not None]
    out: dict[str, Any] = {
        "n": len(recs),
        "failed": len(recs) - len(ok),
        "total_time_s": sum(r["time_s"] for r in recs),
        "wer": _wer(recs),
        "escalation_rate": None,
        "score_pass_rate": (
            sum(r["score"] >= SCORE_PASS for r in scored) / len(scored) if scored else None
        ),
        "model_usage": dict(Counter(r["model"] for r in ok)),
        "overhead_s": None,
        "per_condition_wer": _grouped(files, name, "condition"),
        "per_manifest_wer": _grouped(files, name, "manifest"),
    }
    if name == ORACLE:
        out["ladder_pick_time_s"] = sum(r["ladder_pick_time_s"] for r in recs)
    if name in CASCADES:
        out["escalation_rate"] = sum(r["escalations"] > 0 for r in ok) / len(ok) if ok else None
        out["overhead_s"] = sum(r["overhead_s"] for r in ok)
        out["net_overhead_s"] = sum(r["net_overhead_s"] for r in ok)
        out["model_runs"] = dict(Counter(run for r in ok for run in r["runs"]))
        out["escalation_reasons"] = dict(Counter(r["reason"] for r in ok))
    return out


def _grouped(files: Sequence[dict[str, Any]], name: str, key: str) -> dict[str, float]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in files:
        label = condition_bucket(f["condition"]) if key == "condition" else f[key]
        groups.setdefault(label, []).append(f["strategies"][name])
    return {k: _wer(v) for k, v in sorted(groups.items())}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def summarise(files: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Per-strategy summaries and the ratios the issue's targets are stated in."""
    smallest, largest = f"always-{names[0]}", f"always-{names[-1]}"
    strategies = {s: _summary(s, files) for s in (smallest, largest, ORACLE, STATIC, SEGMENT)}
    analysis = [f["analysis_s"] for f in files if f["analysis_s"] is not None]
    small_t = strategies[smallest]["total_time_s"]
    targets: dict[str, Any] = {}
    for c in CASCADES:
        s = strategies[c]
        vs_largest = _ratio(s["total_time_s"], strategies[largest]["total_time_s"])
        vs_oracle = _ratio(s["total_time_s"], strategies[ORACLE]["total_time_s"])
        wer_points = 100 * (s["wer"] - strategies[largest]["wer"])
        overhead = _ratio(s["overhead_s"], small_t)
        net_overhead = _ratio(s["net_overhead_s"], small_t)
        targets[c] = {
            "time_vs_largest": vs_largest,
            "time_vs_oracle": vs_oracle,
            "wer_delta_points": wer_points,
            "overhead_vs_smallest": overhead,
            "net_overhead_vs_smallest": net_overhead,
            "meets_time_largest": vs_largest is not None and vs_largest <= TARGET_LARGEST,
            "meets_time_oracle": vs_oracle is not None and vs_oracle <= TARGET_ORACLE,
            "meets_wer": wer_points <= TARGET_WER_POINTS,
            "meets_overhead": overhead is not None and overhead <= TARGET_OVERHEAD,
            "meets_net_overhead": net_overhead is not None and net_overhead <= TARGET_OVERHEAD,
        }
    return {
        "n": len(files),
        "files_failed": sum(f["error"] is not None for f in files),
        "ladder": list(names),
        "strategies": strategies,
        "analysis_s_per_file": sum(analysis) / len(analysis) if analysis else None,
        "analysis_vs_smallest": _ratio(sum(analysis), small_t) if analysis else None,
        "targets": targets,
    }


def run_bench(
    items: Sequence[BenchItem],
    *,
    ladder: str | Ladder = "micro",
    preset: str | Preset = "balanced",
    models_dir: str | Path | None = None,
    threads: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every strategy on ``items``; the report (see :func:`summarise`) plus ``items``."""
    rungs = get_ladder(ladder)
    chosen = get_preset(preset)
    runner = _Runner(rungs, chosen, models_dir, threads)
    try:
        if items:
            try:
                runner.warm_up(load_audio(items[0].item.path))
            except Exception as exc:  # the first file is bad: its own record will say so
                print(f"warm-up skipped: {_error(exc)}", file=sys.stderr)
        files = []
        for i, entry in enumerate(items):
            files.append(measure_file(runner, entry, i))
            if progress:
                times = ", ".join(
                    f"{k} {v['time_s']:.2f}s" for k, v in files[-1]["strategies"].items()
                )
                print(f"[{i + 1}/{len(items)}] {entry.item.audio}: {times}", file=sys.stderr)
    finally:
        runner.close()
    report = summarise(files, rungs.names)
    report.update(preset=chosen.name, threads=threads, items=files)
    return report


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as markdown: strategies, targets, per-condition WER."""
    st = report["strategies"]
    n = report["n"]
    lines = [
        f"{n} utterances ({report['files_failed']} unreadable), ladder "
        f"{' < '.join(report['ladder'])}, preset {report['preset']}, {report['threads']} "
        "thread(s). WER in % (corpus-level, normalised); time = sum over files.",
        "",
        "| strategy | total time (s) | ms / file | WER | escalated | score ≥ 0.8 | "
        "overhead (ms / file) | failed | model usage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in st.items():
        usage = ", ".join(f"{k} {v}" for k, v in sorted(s["model_usage"].items()))
        over = "–" if s["overhead_s"] is None else f"{1000 * s['overhead_s'] / max(1, n):.2f}"
        lines.append(
            f"| {name} | {s['total_time_s']:.2f} | {1000 * s['total_time_s'] / max(1, n):.0f} "
            f"| {_pct(s['wer'])} | {_pct(s['escalation_rate'])} | {_pct(s['score_pass_rate'])} "
            f"| {over} | {s['failed']} | {usage} |"
        )
    a = report["analysis_s_per_file"]
    ladder_pick = st[ORACLE]["ladder_pick_time_s"]
    lines += [
        "",
        "Native feature analysis alone: "
        + ("–" if a is None else f"{1000 * a:.2f} ms per file")
        + f" ({_pct(report['analysis_vs_smallest'])}% of the smallest model's time). "
        f"Oracle by ladder order instead of measured time: {ladder_pick:.2f} s.",
        "",
        "| target | " + " | ".join(report["targets"]) + " |",
        "|---|" + "---:|" * len(report["targets"]),
    ]
    rows = [
        ("time / always-largest (≤ 0.25)", "time_vs_largest", "meets_time_largest", "{:.3f}"),
        ("time / oracle (≤ 1.2, fallback)", "time_vs_oracle", "meets_time_oracle", "{:.3f}"),
        ("WER − always-largest (≤ +0.5 pt)", "wer_delta_points", "meets_wer", "{:+.2f}"),
        ("overhead / smallest (≤ 2%)", "overhead_vs_smallest", "meets_overhead", "{:.2%}"),
        (
            "overhead without the analysis every run pays / smallest (≤ 2%)",
            "net_overhead_vs_smallest",
            "meets_net_overhead",
            "{:.2%}",
        ),
    ]
    for label, key, flag, fmt in rows:
        cells = []
        for t in report["targets"].values():
            value = "–" if t[key] is None else fmt.format(t[key])
            cells.append(f"{value} {'✓' if t[flag] else '✗'}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += _group_table(st, "per_condition_wer", "condition")
    if len({f for s in st.values() for f in s["per_manifest_wer"]}) > 1:
        lines += _group_table(st, "per_manifest_wer", "manifest")
    return "\n".join(lines) + "\n"


def _group_table(st: dict[str, Any], key: str, title: str) -> list[str]:
    groups = sorted({g for s in st.values() for g in s[key]})
    out = ["", f"| {title} (WER %) | " + " | ".join(st) + " |", "|---|" + "---:|" * len(st)]
    for g in groups:
        out.append(f"| {g} | " + " | ".join(_pct(s[key].get(g)) for s in st.values()) + " |")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--manifest", type=Path, action="append", required=True)
    p.add_argument("--ladder", default="micro")
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--preset", default="balanced")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=None, help="first N utterances of each manifest")
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no per-file progress")
    args = p.parse_args(argv)
    items = load_items(args.manifest, args.n)
    report = run_bench(
        items,
        ladder=args.ladder,
        preset=args.preset,
        models_dir=args.models_dir,
        threads=args.threads,
        progress=not args.quiet,
    )
    publish(
        markdown(report),
        report,
        script="bench_cascade.py",
        section=SECTION,
        json_path=args.json,
        update_readme=args.update_readme,
        argv=argv,
        readme=README,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
