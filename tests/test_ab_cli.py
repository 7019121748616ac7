"""``whisper-cascade ab``: a round trip on a real SQLite store, and ``ab run`` on random-weight
models with real whisper.cpp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisper_cascade import cli
from whisper_cascade.abrun import RunItem, run_items, target_cascade
from whisper_cascade.abtest import ABTests
from whisper_cascade.audio import sample_path
from whisper_cascade.cli_ab import parse_arm, parse_duration
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.store import open_store


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "ab.db")
    code, out, _ = _run(
        capsys, "ab", "create", "speed", "--arm", "A=fast:3", "--arm", "B=balanced:1",
        "--metric", "latency", "--min-samples", "5", "--max-samples", "50", "--duration", "12h",
        "--db", db, "--json",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    tid = created["test_id"]
    assert created["split"] == {"A": 0.75, "B": 0.25}
    assert created["config"]["max_duration_s"] == 12 * 3600
    assert created["config"]["direction"] == "lower"
    assert _run(capsys, "ab", "start", tid, "--db", db)[1].strip() == f"{tid}: running"
    with open_store(db) as store:
        tests = ABTests(store)
        for i in range(20):
            arm = tests.assign(tid, f"s{i}")
            tests.record(tid, arm, f"j{i}", {"latency_s": 1.0 + (i % 3) * 0.1, "score": 0.5})
    code, out, _ = _run(capsys, "ab", "list", "--db", db)
    assert code == 0 and tid in out and "running" in out and "A=fast (75%)" in out
    code, out, _ = _run(capsys, "ab", "list", "--db", db, "--json")
    assert [t["test_id"] for t in json.loads(out)] == [tid]
    code, out, _ = _run(capsys, "ab", "results", tid, "--db", db)
    assert code == 0 and "winner:" in out and "latency" in out and "mSPRT p" in out
    code, out, _ = _run(capsys, "ab", "results", tid, "--db", db, "--json")
    r = json.loads(out)
    assert r["n_total"] == 20 and r["metric"] == "latency"
    assert _run(capsys, "ab", "stop", tid, "--db", db)[1].strip() == f"{tid}: stopped"
    code, out, _ = _run(capsys, "ab", "create", "plain", "--arm", "A=fast", "--arm", "B=x.bin",
                        "--db", db)  # fmt: skip
    assert code == 0 and len(out.strip()) == 12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "t", "--arm", "A=fast"], "at least two arms"),
        (["create", "t", "--arm", "A=fast:1", "--arm", "B=balanced"], "every arm or to none"),
        (["create", "t", "--arm", "A=fast", "--arm", "A=balanced"], "given twice"),
        (["create", "t", "--arm", "A", "--arm", "B=fast"], "NAME=TARGET"),
        (["create", "t", "--arm", "A=f", "--arm", "B=b", "--duration", "soon"], "bad duration"),
        (["start", "missing"], "unknown A/B test"),
        (["results", "missing"], "unknown A/B test"),
        (["run", "missing", "x.wav"], "--session is required"),
        (["run", "missing"], "give AUDIO files or --manifest"),
    ],
)
def test_errors_are_one_line_and_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = _run(capsys, "ab", *argv, "--db", str(tmp_path / "e.db"))
    assert code == 1 and message in err and "Traceback" not in err
    assert err.startswith("error: ")


def test_parsers() -> None:
    assert parse_duration("7d") == 7 * 86400 and parse_duration("30m") == 1800
    assert parse_duration("45") == 45 and parse_duration("1.5h") == 5400
    assert parse_arm("B=/models/ggml-x.bin:0.25") == ("B", "/models/ggml-x.bin", 0.25)
    assert parse_arm("B=micro-s,micro-l") == ("B", "micro-s,micro-l", None)
    assert parse_arm("C=c:/weird") == ("C", "c:/weird", None)
    for bad in ("0h", "-1d", "3y"):
        with pytest.raises(InvalidArgumentError):
            parse_duration(bad)
    with pytest.raises(InvalidArgumentError):
        parse_arm("A=fast:-1")


def test_target_cascade_kinds(models: Path) -> None:
    assert target_cascade("fast", models_dir=models).preset.name == "fast"
    assert target_cascade("micro", models_dir=models).ladder.names == (
        "micro-s",
        "micro-m",
        "micro-l",
    )
    assert target_cascade("micro-s,micro-l").ladder.names == ("micro-s", "micro-l")
    assert target_cascade("micro-m").ladder.names == ("micro-m",)


def test_ab_run_records_observations(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "run.db")
    with open_store(db) as store:
        tests = ABTests(store)
        tid = tests.create("models", {"small": "micro-s", "ladder": "micro-s,micro-m"},
                           metric="wer", min_samples=2)  # fmt: skip
        tests.start(tid)
    sample = str(sample_path())
    manifest = tmp_path / "m.jsonl"
    lines = [
        {"audio": sample, "text": "and so my fellow americans", "session": f"u{i}"}
        for i in range(4)
    ]
    lines.append({"audio": str(tmp_path / "missing.wav"), "text": "x", "session": "u9"})
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, out, err = _run(
        capsys, "ab", "run", tid, "--manifest", str(manifest), "--models-dir", str(models),
        "--threads", "1", "--db", db, "--json",
    )  # fmt: skip
    assert code == 1 and "Traceback" not in err  # the missing file is an error, not recorded
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert len(outcomes) == 5 and outcomes[-1]["metrics"] is None and outcomes[-1]["error"]
    for o in outcomes[:4]:
        m = o["metrics"]
        assert m["failed"] is False and m["latency_s"] > 0 and m["wer"] >= 0
        assert 0 <= m["score"] <= 1 and m["cost"] >= 1.0
    with open_store(db) as store:
        tests = ABTests(store)
        assert len(tests.observations(tid)) == 4
        sticky = {o["session"]: o["arm"] for o in outcomes[:4]}
        assert all(tests.assign(tid, s) == a for s, a in sticky.items())
        r = tests.results(tid)
        assert sum(a["n_with_reference"] for a in r["arms"].values()) == 4
        # a broken arm: the model file is missing → recorded as a failure
        broken = tests.create("broken", {"ok": "micro-s", "gone": "micro-zz"})
        tests.start(broken)
        # sessions chosen so that both arms get traffic (the split hashes the random test id)
        by_arm: dict[str, list[str]] = {}
        for i in range(200):
            by_arm.setdefault(tests.assign(broken, f"x{i}"), []).append(f"x{i}")
        sessions = by_arm["ok"][:3] + by_arm["gone"][:3]
        outs = run_items(
            tests, broken, [RunItem(sample, s) for s in sessions], models_dir=models, n_threads=1
        )
        failed = [o for o in outs if o["arm"] == "gone"]
        assert failed and all(o["metrics"]["failed"] for o in failed)
        assert tests.results(broken)["arms"]["gone"]["failure_rate"] == 1.0
    code, out, _ = _run(capsys, "ab", "run", tid, sample, "--session", "solo", "--reference",
                        "and so", "--models-dir", str(models), "--db", db)  # fmt: skip
    assert code == 0 and "score" in out and "wer" in out
