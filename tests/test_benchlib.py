"""bench/benchlib.py: a bench's README section is appended once, then replaced in place."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "benchlib.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchlib_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_appends_when_missing_then_replaces_without_duplicating(tmp_path: Path) -> None:
    lib = _load()
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Other\n\nkept\n", encoding="utf-8")
    lib.update_readme_section("## Mine", "python bench/x.py --n 1", "| a |\n", readme)
    text = readme.read_text(encoding="utf-8")
    assert text == (
        "# Benchmarks\n\n## Other\n\nkept\n\n"
        "## Mine\n\n```sh\npython bench/x.py --n 1\n```\n\n| a |\n"
    )
    lib.update_readme_section("## Mine", "python bench/x.py --n 2", "| b |\n", readme)
    text = readme.read_text(encoding="utf-8")
    assert text.count("## Mine") == 1 and "| a |" not in text and "--n 1" not in text
    assert text.endswith("```sh\npython bench/x.py --n 2\n```\n\n| b |\n")


def test_replaces_a_middle_section_and_keeps_the_rest(tmp_path: Path) -> None:
    lib = _load()
    readme = tmp_path / "README.md"
    readme.write_text("# B\n\n## Mine\n\nold\n\n## Other\n\nkept\n", encoding="utf-8")
    lib.update_readme_section("## Mine", "cmd", "new\n", readme)
    text = readme.read_text(encoding="utf-8")
    assert text == "# B\n\n## Mine\n\n```sh\ncmd\n```\n\nnew\n\n## Other\n\nkept\n"


def test_default_path_is_the_bench_readme() -> None:
    lib = _load()
    assert SCRIPT.with_name("README.md") == lib.README_PATH and lib.README_PATH.is_file()
    text = lib.README_PATH.read_text(encoding="utf-8")
    for title in ("## Cascade", "## Learned thresholds", "## Service load test", "## Micro zoo"):
        assert text.count(title + "\n") <= 1


def test_a_title_that_prefixes_another_matches_only_its_own_line(tmp_path: Path) -> None:
    lib = _load()
    readme = tmp_path / "README.md"
    readme.write_text("# B\n\n## Mine (variant)\n\nother\n\n## Mine\n\nold\n", encoding="utf-8")
    lib.update_readme_section("## Mine", "cmd", "new\n", readme)
    text = readme.read_text(encoding="utf-8")
    assert text == "# B\n\n## Mine (variant)\n\nother\n\n## Mine\n\n```sh\ncmd\n```\n\nnew\n"
