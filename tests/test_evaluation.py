"""Manifests, text normalisation, corpus WER and the eval report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from whisper_cascade.errors import (
    AudioError,
    FileAccessError,
    InvalidArgumentError,
    ManifestError,
    WhisperCascadeError,
)
from whisper_cascade.evaluation import (
    EvalReport,
    normalize_text,
    number_words,
    read_manifest,
    run_eval,
    word_edits,
)
from whisper_cascade.manifest import ManifestItem


def write_manifest(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- manifests ---------------------------------------------------------------------------------


def test_read_manifest_resolves_relative_paths(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "corpus" / "m.jsonl",
        [
            {"audio": "wav/a.wav", "text": "turn on the lights", "condition": "clean"},
            "",
            "   ",
            {
                "audio": "/abs/b.wav",
                "text": "call mom",
                "voice": "en-us",
                "snr_db": 10,
                "seed": 4,
            },
        ],
    )
    items = read_manifest(manifest)
    assert items == [
        ManifestItem(
            audio="wav/a.wav",
            path=tmp_path / "corpus" / "wav" / "a.wav",
            text="turn on the lights",
            condition="clean",
            line=1,
        ),
        ManifestItem(
            audio="/abs/b.wav",
            path=Path("/abs/b.wav"),
            text="call mom",
            voice="en-us",
            snr_db=10.0,
            extra={"seed": 4},
            line=4,
        ),
    ]


def test_relative_manifest_path_resolves_against_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_manifest(tmp_path / "sub" / "m.jsonl", [{"audio": "x.wav", "text": "a"}])
    monkeypatch.chdir(tmp_path)
    (item,) = read_manifest("sub/m.jsonl")
    assert item.path == tmp_path / "sub" / "x.wav"
    assert item.path.is_absolute()


def test_read_manifest_bom_and_empty(tmp_path: Path) -> None:
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b'\xef\xbb\xbf{"audio": "a.wav", "text": "x"}\r\n')
    assert [i.audio for i in read_manifest(bom)] == ["a.wav"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert read_manifest(empty) == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"text": "a"}', "'audio' is required"),
        ('{"audio": "", "text": "a"}', "'audio' is required"),
        ('{"audio": 3, "text": "a"}', "'audio' is required"),
        ('{"audio": "a.wav"}', "'text' is required"),
        ('{"audio": "a.wav", "text": null}', "'text' is required"),
        ('{"audio": "a.wav", "text": "a", "condition": 5}', "'condition' must be a string"),
        ('{"audio": "a.wav", "text": "a", "voice": []}', "'voice' must be a string"),
        ('{"audio": "a.wav", "text": "a", "snr_db": "10"}', "'snr_db' must be a number"),
        ('{"audio": "a.wav", "text": "a", "snr_db": true}', "'snr_db' must be a number"),
        ('{"audio": "a.wav", "text": "a", "snr_db": NaN}', "'snr_db' must be finite"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    manifest = write_manifest(tmp_path / "m.jsonl", [{"audio": "ok.wav", "text": "fine"}, "", line])
    with pytest.raises(ManifestError, match=problem) as info:
        read_manifest(manifest)
    assert str(info.value).startswith(f"{manifest}:3: ")
    assert isinstance(info.value, ValueError) and isinstance(info.value, WhisperCascadeError)


def test_manifest_encoding_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(b'{"audio": "a.wav", "text": "x"}\n{"audio": "\xe9.wav", "text": "x"}\n')
    with pytest.raises(ManifestError, match=r"latin\.jsonl:2: not UTF-8"):
        read_manifest(bad)
    with pytest.raises(FileAccessError, match="cannot read manifest"):
        read_manifest(tmp_path / "missing.jsonl")


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("Turn ON the Lights.", "turn on the lights"),
        ("  wake me   up\tat\nseven  ", "wake me up at seven"),
        ("Set it to 21 degrees!", "set it to twenty one degrees"),
        ("twenty-one", "twenty one"),
        ("at 7 o'clock", "at seven o clock"),
        ("0 5 10 13 40 99", "zero five ten thirteen forty ninety nine"),
        ("navigate to 120 main street", "navigate to one hundred and twenty main street"),
        ("300 and 905", "three hundred and nine hundred and five"),
        ("room 007", "room zero zero seven"),
        ("1234 steps", "1234 steps"),
        ("10am", "ten am"),
        ("3.5", "three five"),
        ("Café, ÉCOLE", "café école"),
        ("Straße", "strasse"),
        ("ﬁve ²", "five two"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalize_text(raw: str, normalized: str) -> None:
    assert normalize_text(raw) == normalized
    assert normalize_text(normalized) == normalized  # idempotent


def test_number_words() -> None:
    assert number_words(0) == "zero"
    assert number_words(19) == "nineteen"
    assert number_words(20) == "twenty"
    assert number_words(99) == "ninety nine"
    assert number_words(100) == "one hundred"
    assert number_words(999) == "nine hundred and ninety nine"
    for bad in (-1, 1000):
        with pytest.raises(InvalidArgumentError):
            number_words(bad)


def test_word_edits() -> None:
    assert word_edits("Turn on the lights", "turn on the lights.") == (0, 4)
    assert word_edits("turn on the lights", "turn the light") == (2, 4)
    assert word_edits("a b", "a b c d") == (2, 2)
    assert word_edits("", "") == (0, 0)
    assert word_edits("...", "noise words") == (2, 0)
    assert word_edits("set to 21", "set to twenty one") == (0, 4)


# --- run_eval ----------------------------------------------------------------------------------

ROWS = [
    {"audio": "a.wav", "text": "turn on the kitchen lights", "condition": "clean"},
    {"audio": "b.wav", "text": "call mom at home", "condition": "clean"},
    {"audio": "sub/c.wav", "text": "set a timer for 5 minutes", "condition": "pink10"},
    {"audio": "d.wav", "text": "play jazz in the garden", "condition": "pink10"},
    {"audio": "e.wav", "text": "what time is it in paris"},
]


def cascade_fn(path: Path) -> Mapping[str, Any]:
    """A plain transcriber over the manifest above, keyed by the resolved file name."""
    name = path.name
    if name == "d.wav":
        raise AudioError(f"cannot decode {path}")
    reference = {r["audio"].split("/")[-1]: r["text"] for r in ROWS}[name]
    if name == "a.wav":  # one word dropped, escalated once, high score
        text = reference.replace("kitchen ", "")
        selection = {"final_model": "micro-m", "escalation_count": 1}
        return {"text": text, "time_s": 0.5, "model_selection": selection | _score(0.9)}
    if name == "b.wav":  # perfect, different casing and punctuation
        selection = {"final_model": "micro-s", "escalation_count": 0} | _score(0.8)
        return {"text": "Call Mom at home.", "time_s": 0.25, "model_selection": selection}
    if name == "c.wav":  # digits against spelled words; no score reported
        return {"text": "set a timer for five minutes", "time_s": 0.25, "model": "micro-s"}
    return {"text": reference + " please", "time_s": 1.0, "model": "micro-l", "score": 0.5}


def _score(score: float) -> dict[str, Any]:
    return {"decision_metrics": {"score": score, "confidence": 0.7}}


def test_run_eval_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_manifest(tmp_path / "m.jsonl", ROWS)
    seen: list[Path] = []

    def fn(path: Path) -> Mapping[str, Any]:
        seen.append(path)
        return cascade_fn(path)

    report = run_eval(manifest, fn, progress=True)
    assert seen == [tmp_path / r["audio"] for r in ROWS]
    assert report.n == 5
    # edits: a 1 deletion, b 0, c 0, d 5 deletions (error), e 1 insertion; words 5+4+6+5+6 = 26
    assert report.wer == pytest.approx(7 / 26)
    assert report.total_time_s == pytest.approx(2.0, abs=0.05)  # d's measured time is ~0
    assert report.escalation_rate == pytest.approx(1 / 4)
    assert report.model_usage == {"micro-s": 2, "micro-l": 1, "micro-m": 1}
    assert report.score_pass_rate == pytest.approx(2 / 3)
    assert [i.audio for i in report.errors] == ["d.wav"]
    assert report.per_condition == {
        "clean": {"n": 2, "wer": pytest.approx(1 / 9), "errors": 0},
        "pink10": {"n": 2, "wer": pytest.approx(5 / 11), "errors": 1},
        "unspecified": {"n": 1, "wer": pytest.approx(1 / 6), "errors": 0},
    }
    err = capsys.readouterr().err
    assert "[1/5] a.wav (0.50 s)" in err and "[4/5] d.wav (error)" in err

    data = report.to_dict()
    assert set(data) == {
        "n",
        "wer",
        "total_time_s",
        "escalation_rate",
        "model_usage",
        "score_pass_rate",
        "items",
        "per_condition",
        "errors",
    }
    assert json.loads(json.dumps(data)) == data
    assert data["errors"] == [
        {"audio": "d.wav", "error": "AudioError: cannot decode " + str(tmp_path / "d.wav")}
    ]
    first, _, third, fourth, _ = data["items"]
    assert first == {
        "audio": "a.wav",
        "reference": "turn on the kitchen lights",
        "hypothesis": "turn on the lights",
        "final_model": "micro-m",
        "time_s": 0.5,
        "score": 0.9,
        "condition": "clean",
        "escalation_count": 1,
        "wer": pytest.approx(0.2),
        "error": None,
    }
    assert third["audio"] == "sub/c.wav" and third["score"] is None and third["wer"] == 0.0
    assert fourth["hypothesis"] == "" and fourth["final_model"] is None
    assert fourth["error"].startswith("AudioError")

    summary = report.summary_text()
    for needle in (
        "files               5 (1 failed)",
        "WER                 26.92%",
        "total time",
        "per file",
        "escalation rate     25.0%",
        "score >= 0.8        66.7%",
        "micro-s",
        "pink10",
        "45.5%",
        "error: d.wav: AudioError",
    ):
        assert needle in summary


def test_run_eval_on_items_and_measured_time() -> None:
    items = [ManifestItem(audio="x.wav", path=Path("/x.wav"), text="hello world")]
    report = run_eval(items, lambda p: {"text": "hello world"})
    assert report.wer == 0.0 and report.n == 1
    assert 0 <= report.items[0].time_s < 1.0
    assert report.model_usage == {"unknown": 1}
    assert report.score_pass_rate is None
    assert "score >= 0.8        n/a" in report.summary_text()
    assert report.to_dict()["score_pass_rate"] is None


def test_all_failed_report() -> None:
    items = [ManifestItem(audio="x.wav", path=Path("/x.wav"), text="")]

    def fail(path: Path) -> Mapping[str, Any]:
        raise AudioError("silent")

    report = run_eval(items, fail)
    assert report.wer == 0.0 and report.escalation_rate == 0.0 and report.model_usage == {}
    assert EvalReport().summary_text().startswith("files               0\n")


def test_run_eval_rejects_empty_manifest_and_bad_results(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="no utterances"):
        run_eval(empty, cascade_fn)
    with pytest.raises(ManifestError, match="<items>: the manifest has no utterances"):
        run_eval([], cascade_fn)
    item = [ManifestItem(audio="x.wav", path=Path("/x.wav"), text="a")]
    for bad, message in [
        ("text", "expected a mapping"),
        ({"text": 1}, "'text' must be a string"),
        ({"text": "a", "time_s": -1}, "time_s must be >= 0"),
        ({"text": "a", "time_s": "1"}, "time_s must be a finite number"),
        ({"text": "a", "model": 3}, "model name must be a string"),
        ({"text": "a", "model": "m", "score": float("nan")}, "score must be a finite"),
        ({"text": "a", "model_selection": {"escalation_count": -1}}, "escalation_count"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            run_eval(item, lambda p, bad=bad: bad)


def test_other_exceptions_propagate() -> None:
    item = [ManifestItem(audio="x.wav", path=Path("/x.wav"), text="a")]

    def broken(path: Path) -> Mapping[str, Any]:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_eval(item, broken)
