"""Helpers shared by the benches: writing a bench's own section of bench/README.md."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

README_PATH = Path(__file__).with_name("README.md")


def update_readme_section(title: str, command: str, body: str, readme: Path = README_PATH) -> None:
    """Replace the section headed ``title`` (a whole ``## ...`` line) of ``readme``, or append it.

    The section becomes the title, ``command`` in a ``sh`` block, then ``body``; it ends where
    the next ``## `` heading starts, so the sections after it are kept.
    """
    text = readme.read_text(encoding="utf-8")
    section = f"{title}\n\n```sh\n{command}\n```\n\n{body}"
    heading = re.search(rf"^{re.escape(title)}[ \t]*$", text, flags=re.MULTILINE)
    if heading is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        start = heading.start()
        nxt = text.find("\n## ", start + len(title))
        text = text[:start] + section + ("" if nxt < 0 else text[nxt:])
    readme.write_text(text, encoding="utf-8")


def publish(
    table: str,
    report: object,
    *,
    script: str,
    section: str,
    json_path: Path | None,
    update_readme: bool,
    argv: Sequence[str] | None,
    readme: Path = README_PATH,
) -> None:
    """Print a bench's table; write its full report as JSON and its README section on demand
    (the section's command is ``python bench/SCRIPT`` with the bench's own arguments)."""
    print(table)
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if update_readme:
        argv_text = " ".join(sys.argv[1:] if argv is None else argv)
        update_readme_section(section, f"python bench/{script} {argv_text}", table, readme)
