"""Leftovers of killed writes under a store root: found by name, removed only when dead.

NeSSA writes everything under a temporary name and renames it into place, so a write killed
half-way leaves its temporary behind. These names are NeSSA's (nothing else is touched):

* folders ``.<name>.tmp-<pid>-<hex>`` (an ingest in progress; before this version
  ``.<name>.tmp-<hex>``) and ``.<name>.old-<hex>`` (a replaced store being deleted);
* files ``.<name>.tmp<pid>`` (selection files), ``<name>.tmp<pid>`` and ``<name>.tmp<pid>.<tid>``
  (verify records, models, column files ``column-*.arrow.tmp<pid>``), ``manifest.json.tmp`` /
  ``manifest.json.tmp<pid>``;
* column files ``column-<slug>-<sha prefix>.arrow`` in a store folder that its manifest does not
  list (a column write killed between its rename and the manifest's), once ``min_age_s`` old.

An entry is left alone while its writer may still run: when it is locked (``flock``: an ingest
holds a lock on its folder for its whole life, across containers sharing the kernel), when the
process id in its name is alive on this host, or, for a name without a pid, when it changed in
the last ``min_age_s`` seconds. The store root's own state folder (``.nessa``) is cleaned by
its owners (models registry, selection manager) and skipped here when asked.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import time
from pathlib import Path

from storage_service.columns import COLUMN_FILE_RE
from storage_service.manifest import Manifest, ManifestError

__all__ = ["find_leftovers", "remove_leftovers", "remove_leftovers_of", "MIN_AGE_S"]

#: A temporary without a pid in its name is a leftover once it is this old (seconds).
MIN_AGE_S = 600.0

_DIR = re.compile(r"^\..+\.(?:tmp-(?:(?P<pid>\d+)-)?[0-9a-f]+|old-[0-9a-f]+)$")
_FILE = re.compile(r"^(?:.+\.tmp(?P<pid>\d+)(?:\.\d+)?|manifest\.json\.tmp)$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops our lock too
    return False


def _why_dead(path: Path, pid: str | None, min_age_s: float, now: float) -> str | None:
    """Why ``path`` is a leftover, or None if its writer may still be running."""
    if _locked(path):
        return None
    if pid is not None:
        return None if _pid_alive(int(pid)) else f"its writer, process {pid}, is gone"
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        return None
    return f"unchanged for {age:.0f} s" if age >= min_age_s else None


def _listed_columns(store: Path) -> set[str] | None:
    """Column files the store's manifest lists; None when the manifest cannot be read (then
    nothing there is treated as an orphan)."""
    try:
        return {c.file for c in Manifest.load(store).columns}
    except ManifestError:
        return None


def find_leftovers(root: str | os.PathLike, *, skip: tuple[str, ...] = (), min_age_s: float = MIN_AGE_S) -> list[tuple[Path, str]]:
    """``(path, why)`` of every dead temporary below ``root`` (see the module docstring)."""
    root = Path(root)
    now = time.time()
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if here == root and d in skip:
                continue
            m = _DIR.match(d)
            if m is None:
                keep.append(d)
                continue
            why = _why_dead(here / d, m.group("pid"), min_age_s, now)
            if why is not None:
                out.append((here / d, why))
        dirnames[:] = keep  # never descend into a temporary: it goes (or stays) whole
        listed = _listed_columns(here) if "manifest.json" in filenames else None
        for f in sorted(filenames):
            if listed is not None and COLUMN_FILE_RE.match(f) and f not in listed:
                why = _why_dead(here / f, None, min_age_s, now)
                if why is not None:
                    out.append((here / f, f"a column file the manifest does not list, {why}"))
                continue
            m = _FILE.match(f)
            if m is None:
                continue
            why = _why_dead(here / f, m.group("pid"), min_age_s, now)
            if why is not None:
                out.append((here / f, why))
    return out


def remove_leftovers(root: str | os.PathLike, *, skip: tuple[str, ...] = (), min_age_s: float = MIN_AGE_S) -> list[tuple[Path, str]]:
    """Delete what ``find_leftovers`` finds; returns what was removed, with why."""
    removed = []
    for path, why in find_leftovers(root, skip=skip, min_age_s=min_age_s):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue
        except OSError:
            continue  # not ours to force (permissions); nessa verify reports what is left
        removed.append((path, why))
    return removed


def remove_leftovers_of(dest: str | os.PathLike, *, min_age_s: float = MIN_AGE_S) -> list[tuple[Path, str]]:
    """Delete dead temporaries of earlier writes of ``dest`` only (its ``.<name>.tmp-*`` and
    ``.<name>.old-*`` siblings): what an ingest does before it starts, without walking the tree."""
    dest = Path(dest)
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return removed
    prefix = f".{dest.name}."
    for entry in entries:
        m = _DIR.match(entry.name)
        if m is None or not entry.name.startswith(prefix):
            continue
        rest = entry.name[len(prefix):]
        if not (rest.startswith("tmp-") or rest.startswith("old-")) or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        why = _why_dead(path, m.group("pid"), min_age_s, now)
        if why is not None:
            shutil.rmtree(path, ignore_errors=True)
            removed.append((path, why))
    return removed
