"""The TOML configuration: search order, parsing, strict validation, prices."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from whisper_cascade.config import (
    BUILTIN_PRESETS,
    Config,
    ModelDef,
    PresetDef,
    Prices,
    default_config_path,
    find_config,
    load_config,
)
from whisper_cascade.errors import ConfigError, InvalidArgumentError, WhisperCascadeError
from whisper_cascade.presets import Preset, get_preset

FULL = """
[models.my-small]
path = "models/ggml-small.en.bin"
window_s = 20.0
audio_ctx = 500
relative_cost = 6.3
sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

[models.elsewhere]
path = "/opt/ggml-x.bin"

[models.bare]
relative_cost = 2

[ladders]
english = ["tiny.en", "base.en", "my-small"]

[presets.careful]
base = "accurate"
ladder = "english"
default_threshold = 0.85
keep_best = true
preselect = true
never_skip = ["tiny.en"]

[presets.careful.weights]
confidence = 0.4
no_speech_penalty = 1

[presets.careful.thresholds]
"tiny.en" = 0.9
"base.en" = 0

[presets.careful.model_weights."tiny.en"]
consistency = 1.2

[presets.plain]

[prices]
cpu_hour = 0.05
currency = "EUR"

[prices.per_model]
"my-small" = 0.0001
"""


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WHISPER_CASCADE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_full_example_parses(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "conf" / "config.toml", FULL)
    cfg = load_config(cfg_file, known_ladders=())
    assert cfg.source == cfg_file
    assert cfg.models["my-small"] == ModelDef(
        name="my-small",
        path=tmp_path / "conf" / "models" / "ggml-small.en.bin",
        window_s=20.0,
        audio_ctx=500,
        relative_cost=6.3,
        sha256="abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    )
    assert cfg.models["elsewhere"].path == Path("/opt/ggml-x.bin")
    assert cfg.models["bare"] == ModelDef("bare", None, 30.0, None, 2.0, None)
    assert cfg.ladders == {"english": ("tiny.en", "base.en", "my-small")}
    assert cfg.presets["careful"] == PresetDef(
        name="careful",
        base="accurate",
        ladder="english",
        weights={"confidence": 0.4, "no_speech_penalty": 1.0},
        thresholds={"tiny.en": 0.9, "base.en": 0.0},
        default_threshold=0.85,
        model_weights={"tiny.en": {"consistency": 1.2}},
        keep_best=True,
        preselect=True,
        never_skip=("tiny.en",),
    )
    assert cfg.presets["plain"] == PresetDef("plain", None, None, {}, {}, None)
    careful = Preset.from_def(cfg.presets["careful"])
    assert careful.keep_best is True and careful.preselect is True
    assert not careful.may_skip("tiny.en") and careful.may_skip("micro-xs")
    plain = Preset.from_def(cfg.presets["plain"])
    assert plain.keep_best is get_preset("balanced").keep_best  # inherited from the base
    assert plain.never_skip == get_preset("balanced").never_skip
    assert cfg.prices == Prices(0.05, "EUR", {"my-small": 0.0001})


def test_docs_example_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "config.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert example is not None
    cfg = load_config(write(tmp_path / "c.toml", example.group(1)), known_ladders=())
    assert cfg.models and cfg.ladders and cfg.presets
    assert cfg.prices.cpu_hour > 0


def test_no_file_gives_empty_config() -> None:
    cfg = load_config()
    assert cfg == Config()
    assert cfg.source is None and cfg.prices == Prices(0.0, "USD", {})


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = write(tmp_path / "xdg" / "whisper-cascade" / "config.toml", "[ladders]\nd = ['a']\n")
    assert default_config_path() == default
    assert find_config() == default
    assert load_config().ladders == {"d": ("a",)}
    env = write(tmp_path / "env.toml", "[ladders]\ne = ['b']\n")
    monkeypatch.setenv("WHISPER_CASCADE_CONFIG", str(env))
    assert load_config().ladders == {"e": ("b",)}
    explicit = write(tmp_path / "explicit.toml", "[ladders]\nx = ['c']\n")
    assert load_config(explicit).ladders == {"x": ("c",)}


def test_home_default_without_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_config_path() == tmp_path / "home" / ".config" / "whisper-cascade" / "config.toml"
    )


def test_missing_explicit_or_env_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml.*--config.*not found"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("WHISPER_CASCADE_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml.*WHISPER_CASCADE_CONFIG"):
        load_config()


def test_syntax_and_encoding_errors(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", "[models\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_config(bad)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[ladders]\nx = ['\xe9']\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin)


def test_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="not found"):
        load_config(folder)


def test_preset_ladder_may_be_builtin(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "c.toml", '[presets.p]\nladder = "micro"\n')
    assert load_config(cfg_file, known_ladders=["micro"]).presets["p"].ladder == "micro"
    with pytest.raises(ConfigError, match=r"presets\.p\.ladder: unknown ladder 'micro'"):
        load_config(cfg_file, known_ladders=[])


def test_default_known_ladders_come_from_registry(tmp_path: Path) -> None:
    cfg_file = write(tmp_path / "c.toml", '[presets.p]\nladder = "no-such-ladder"\n')
    with pytest.raises(ConfigError, match="unknown ladder 'no-such-ladder'"):
        load_config(cfg_file)


@pytest.mark.parametrize(
    ("toml", "key", "problem"),
    [
        ("colour = 1", "colour", "unknown key"),
        ("models = 3", "models", "must be a table, got an integer"),
        ("[models.a]\npth = 'x'", "models.a.pth", "unknown key"),
        ("[models.a]\npath = 3", "models.a.path", "must be a string, got an integer"),
        ("[models.a]\npath = ''", "models.a.path", "must not be empty"),
        ('[models."a/b"]', 'models."a/b"', "no path separator"),
        ("[models.a]\nrelative_cost = -1.0", "models.a.relative_cost", "must be >= 0"),
        ("[models.a]\nrelative_cost = 0", "models.a.relative_cost", "must be > 0"),
        ("[models.a]\nrelative_cost = 'cheap'", "models.a.relative_cost", "must be a number"),
        ("[models.a]\nrelative_cost = true", "models.a.relative_cost", "got a boolean"),
        ("[models.a]\nwindow_s = 0", "models.a.window_s", "must be > 0"),
        ("[models.a]\nwindow_s = nan", "models.a.window_s", "must be finite"),
        ("[models.a]\naudio_ctx = -1", "models.a.audio_ctx", "integer >= 0"),
        ("[models.a]\naudio_ctx = 1.5", "models.a.audio_ctx", "integer >= 0"),
        ("[models.a]\nsha256 = 'abc'", "models.a.sha256", "64 hexadecimal"),
        ("[models.a]\nsha256 = '" + "g" * 64 + "'", "models.a.sha256", "64 hexadecimal"),
        ("[ladders]\nx = 'tiny'", "ladders.x", "non-empty array"),
        ("[ladders]\nx = []", "ladders.x", "non-empty array"),
        ("[ladders]\nx = ['tiny', 2]", "ladders.x[1]", "must be a string"),
        ("[ladders]\nx = ['tiny', 'tiny']", "ladders.x[1]", "appears twice"),
        ("[presets.p]\nbase = 'turbo'", "presets.p.base", "unknown built-in preset 'turbo'"),
        ("[presets.p]\nladder = 'nope'", "presets.p.ladder", "unknown ladder 'nope'"),
        ("[presets.p]\nspeed = 1", "presets.p.speed", "unknown key"),
        ("[presets.p]\ndefault_threshold = 1.5", "presets.p.default_threshold", r"in \[0, 1\]"),
        ("[presets.p]\ndefault_threshold = -0.1", "presets.p.default_threshold", r"in \[0, 1\]"),
        ("[presets.p]\nkeep_best = 1", "presets.p.keep_best", "true or false"),
        ("[presets.p]\npreselect = 'no'", "presets.p.preselect", "true or false"),
        ("[presets.p]\nnever_skip = 'tiny'", "presets.p.never_skip", "list of model names"),
        ("[presets.p]\nnever_skip = [1]", "presets.p.never_skip", "list of model names"),
        ("[presets.p.weights]\nfluency = 1", "presets.p.weights.fluency", "unknown key"),
        ("[presets.p.weights]\nconfidence = -1", "presets.p.weights.confidence", ">= 0"),
        ("[presets.p.thresholds]\n'tiny.en' = 2", 'presets.p.thresholds."tiny.en"', r"\[0, 1\]"),
        ("[presets.p]\nthresholds = 0.5", "presets.p.thresholds", "must be a table"),
        ("[presets.p]\nmodel_weights = 1", "presets.p.model_weights", "must be a table"),
        ("[presets.p.model_weights]\ntiny = 1", "presets.p.model_weights.tiny", "must be a table"),
        (
            "[presets.p.model_weights.tiny]\nfluency = 1",
            "presets.p.model_weights.tiny.fluency",
            "unknown key",
        ),
        (
            "[presets.p.model_weights.tiny]\nconsistency = -1",
            "presets.p.model_weights.tiny.consistency",
            ">= 0",
        ),
        ("presets = []", "presets", "got an array"),
        ("[prices]\ncpu_hour = -0.5", "prices.cpu_hour", ">= 0"),
        ("[prices]\ncurrency = 1", "prices.currency", "must be a string"),
        ("[prices]\nfree = true", "prices.free", "unknown key"),
        ("[prices.per_model]\nx = -1", "prices.per_model.x", ">= 0"),
        ("[prices.per_model]\nx = 1979-05-27", "prices.per_model.x", "got a date"),
    ],
)
def test_strict_validation(tmp_path: Path, toml: str, key: str, problem: str) -> None:
    cfg_file = write(tmp_path / "c.toml", toml + "\n")
    with pytest.raises(ConfigError, match=f"c.toml: {re.escape(key)}: .*{problem}") as info:
        load_config(cfg_file, known_ladders=())
    assert isinstance(info.value, WhisperCascadeError) and isinstance(info.value, ValueError)
    assert str(cfg_file) in str(info.value)


def test_builtin_presets_are_accepted_as_base(tmp_path: Path) -> None:
    body = "".join(f'[presets.p{i}]\nbase = "{b}"\n' for i, b in enumerate(BUILTIN_PRESETS))
    cfg = load_config(write(tmp_path / "c.toml", body), known_ladders=())
    assert [p.base for p in cfg.presets.values()] == list(BUILTIN_PRESETS)


def test_prices_cost() -> None:
    prices = Prices(cpu_hour=0.36, currency="USD", per_model={"small": 0.01, "tiny": 0.001})
    assert prices.cost(100.0) == pytest.approx(0.01)
    assert prices.cost(0, ["tiny", "small"]) == pytest.approx(0.011)
    assert prices.cost(3600, ["tiny", "tiny", "other"]) == pytest.approx(0.362)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidArgumentError):
            prices.cost(bad)
    with pytest.raises(InvalidArgumentError):
        prices.cost("10")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        prices.cost(True)


def test_read_failure_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = write(tmp_path / "c.toml", "")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match=r"c\.toml: cannot read config file: Permission denied"):
        load_config(cfg_file)
