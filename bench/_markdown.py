"""Write a benchmark's table into BENCHMARKS.md: one ``## `` section per benchmark, replaced in
place (or appended), the other sections left as they are."""

from __future__ import annotations

from pathlib import Path

__all__ = ["replace_section"]


def replace_section(path: Path | str, heading: str, text: str) -> None:
    """Put ``text`` (which starts with ``heading``) in place of the file's ``heading`` section."""
    path = Path(path)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    start = old.find(heading)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + len(heading))
        new = old[:start] + text + ("" if end < 0 else old[end:])
    path.write_text(new.rstrip("\n") + "\n")
