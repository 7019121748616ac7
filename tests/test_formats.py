"""Output writers: exact renderings of a hand-made result, parsing back, edge cases."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from whisper_cascade.errors import FileAccessError, InvalidArgumentError
from whisper_cascade.formats import (
    FORMATS,
    format_timestamp,
    render,
    resolve_formats,
    write_outputs,
)

RESULT: dict[str, Any] = {
    "text": " Turn on the lights. Café --> done",
    "segments": [
        {
            "start": 0.0,
            "end": 1.5,
            "text": " Turn on the lights.",
            "words": [{"word": " Turn", "start": 0.0, "end": 0.4, "probability": 0.9}],
        },
        {"start": 1.5, "end": 2.0, "text": "   "},
        {"start": 3725.0024, "end": 3727.25, "text": " Café -->\n done\t"},
    ],
    "model_selection": {"final_model": "micro-s", "escalation_count": 0},
}


def test_timestamps() -> None:
    assert format_timestamp(0) == "00:00:00.000"
    assert format_timestamp(1.0004, ",") == "00:00:01,000"
    assert format_timestamp(59.9996) == "00:01:00.000"
    assert format_timestamp(3725.25) == "01:02:05.250"
    assert format_timestamp(360000.0) == "100:00:00.000"


def test_txt() -> None:
    assert render(RESULT, "txt") == "Turn on the lights.\nCafé -> done\n"


def test_vtt_exact_and_parsed_back() -> None:
    vtt = render(RESULT, "vtt")
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.500\nTurn on the lights.\n\n"
        "01:02:05.002 --> 01:02:07.250\nCafé -> done\n\n"
    )
    assert parse_cues(vtt.removeprefix("WEBVTT\n\n"), ".", numbered=False) == [
        (0.0, 1.5, "Turn on the lights."),
        (3725.002, 3727.25, "Café -> done"),
    ]


def test_srt_exact_and_parsed_back() -> None:
    srt = render(RESULT, "srt")
    assert srt == (
        "1\n00:00:00,000 --> 00:00:01,500\nTurn on the lights.\n\n"
        "2\n01:02:05,002 --> 01:02:07,250\nCafé -> done\n\n"
    )
    assert parse_cues(srt, ",", numbered=True) == [
        (0.0, 1.5, "Turn on the lights."),
        (3725.002, 3727.25, "Café -> done"),
    ]


def test_tsv() -> None:
    assert render(RESULT, "tsv") == (
        "start\tend\ttext\n0\t1500\tTurn on the lights.\n3725002\t3727250\tCafé -> done\n"
    )


def test_json_roundtrip_keeps_everything() -> None:
    text = render(RESULT, "json")
    assert "Café" in text  # not escaped
    assert json.loads(text) == RESULT


def test_json_sanitises_values() -> None:
    result = {
        "text": "x",
        "segments": [],
        "score": float("nan"),
        "arr": np.array([1.5, 2.0], dtype=np.float32),
        "n": np.int64(3),
        "path": Path("/a/b.wav"),
        "pair": (1, float("inf")),
        7: True,
    }
    assert json.loads(render(result, "json")) == {
        "text": "x",
        "segments": [],
        "score": None,
        "arr": [1.5, 2.0],
        "n": 3,
        "path": "/a/b.wav",
        "pair": [1, None],
        "7": True,
    }
    with pytest.raises(InvalidArgumentError, match=r"result\.bad cannot be written as JSON"):
        render({"text": "", "bad": object()}, "json")


def test_empty_result() -> None:
    empty: dict[str, Any] = {"text": "", "segments": []}
    assert render(empty, "txt") == ""
    assert render(empty, "vtt") == "WEBVTT\n\n"
    assert render(empty, "srt") == ""
    assert render(empty, "tsv") == "start\tend\ttext\n"
    assert json.loads(render(empty, "json")) == empty
    assert render({}, "txt") == ""


def test_txt_falls_back_to_text_without_segments() -> None:
    assert render({"text": " hello\nworld "}, "txt") == "hello world\n"


def test_end_before_start_is_clamped() -> None:
    result = {"text": "a", "segments": [{"start": 2.0, "end": 1.0, "text": "a"}]}
    assert render(result, "srt") == "1\n00:00:02,000 --> 00:00:02,000\na\n\n"


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"text": 3}, "text must be a string"),
        ({"text": "", "segments": "abc"}, "segments must be a list"),
        ({"text": "", "segments": [3]}, "segment 0 must be a mapping"),
        ({"text": "", "segments": [{"start": "0", "end": 1, "text": ""}]}, "segment 0 start"),
        ({"text": "", "segments": [{"start": 0, "end": math.nan, "text": ""}]}, "segment 0 end"),
        ({"text": "", "segments": [{"start": -1, "end": 1, "text": ""}]}, ">= 0"),
        ({"text": "", "segments": [{"start": True, "end": 1, "text": ""}]}, "start"),
        ({"text": "", "segments": [{"start": 0, "end": 1, "text": None}]}, "text must be a"),
    ],
)
def test_malformed_results(result: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        render(result, "srt")


def test_render_rejects_non_mappings_and_unknown_formats() -> None:
    with pytest.raises(InvalidArgumentError, match="must be a mapping"):
        render([], "json")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="unknown output format 'docx'"):
        render(RESULT, "docx")


def test_resolve_formats() -> None:
    assert resolve_formats("all") == list(FORMATS)
    assert resolve_formats("srt") == ["srt"]
    assert resolve_formats(["json", "txt", "json", "all"]) == ["json", "txt", "vtt", "srt", "tsv"]
    with pytest.raises(InvalidArgumentError, match="unknown output format 'pdf'"):
        resolve_formats(["txt", "pdf"])
    with pytest.raises(InvalidArgumentError, match="no output format"):
        resolve_formats([])
    with pytest.raises(InvalidArgumentError, match="must be a string"):
        resolve_formats([1])  # type: ignore[list-item]


def test_write_outputs_all(tmp_path: Path) -> None:
    out = tmp_path / "new" / "nested"
    paths = write_outputs(RESULT, "/data/rec.01.wav", "all", out)
    assert paths == [out / f"rec.01.{ext}" for ext in FORMATS]
    for path, fmt in zip(paths, FORMATS, strict=True):
        assert path.read_text(encoding="utf-8") == render(RESULT, fmt)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp left


def test_write_outputs_replaces_existing(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("old", encoding="utf-8")
    assert write_outputs({"text": "new"}, "a.flac", ["txt"], tmp_path) == [tmp_path / "a.txt"]
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "new\n"


def test_write_outputs_renders_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        write_outputs({"text": "", "segments": [{"start": -1}]}, "a.wav", "all", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_write_outputs_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot name outputs"):
        write_outputs(RESULT, "", "txt", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(FileAccessError, match="cannot create output folder"):
        write_outputs(RESULT, "a.wav", "txt", blocker / "sub")
    (tmp_path / "d" / "a.txt").mkdir(parents=True)  # a folder where the file should go
    with pytest.raises(FileAccessError, match=r"cannot write .*a\.txt"):
        write_outputs(RESULT, "a.wav", "txt", tmp_path / "d")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["a.txt"]  # temp file removed


_CUE_TIME = re.compile(r"^(\d+):(\d\d):(\d\d)[.,](\d{3}) --> (\d+):(\d\d):(\d\d)[.,](\d{3})$")


def parse_cues(text: str, marker: str, *, numbered: bool) -> list[tuple[float, float, str]]:
    """A minimal subtitle reader: blocks separated by blank lines."""
    cues = []
    for number, block in enumerate(text.strip("\n").split("\n\n"), start=1):
        lines = block.split("\n")
        if numbered:
            assert lines.pop(0) == str(number)
        assert marker in lines[0]
        match = _CUE_TIME.match(lines[0])
        assert match is not None, lines[0]
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        assert len(lines) == 2, block
        cues.append((round(start, 3), round(end, 3), lines[1]))
    return cues
