"""Build (once, cached) the x86 shared library of the FPGA kernels for the emulator.

The library is built by ``make -C fpga_kernels emu BUILD_DIR=<cache>/<hash>`` where ``<hash>``
covers every source that goes into it (``hls/*.cpp``, ``include/*.h``, ``rtl/cmodel/*.{cpp,h}``
and the Makefile), so an edited kernel is rebuilt on the next use and nobody runs make by hand.
The cache root is ``$NESSA_KERNEL_CACHE`` or ``~/.cache/nessa/kernels``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from fpga_kernels import KERNEL_DIR

__all__ = ["LIB_NAME", "kernel_sources", "library_path"]

LIB_NAME = "libnessa_kernels.so"
_LOCK = threading.Lock()


def kernel_sources() -> list[Path]:
    """Every file the emulation library is built from (sorted)."""
    pats = ["hls/*.cpp", "include/*.h", "rtl/cmodel/*.cpp", "rtl/cmodel/*.h", "Makefile"]
    return sorted({p for pat in pats for p in KERNEL_DIR.glob(pat) if p.is_file()})


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(KERNEL_DIR)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cache_root() -> Path:
    env = os.environ.get("NESSA_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "nessa" / "kernels"


def library_path() -> Path:
    """Path of an up-to-date emulation library, building it first if needed."""
    files = kernel_sources()
    if not any(f.suffix == ".cpp" for f in files):
        raise FileNotFoundError(f"no kernel sources under {KERNEL_DIR}")
    dest = _cache_root() / _digest(files)
    lib = dest / LIB_NAME
    if lib.is_file():
        return lib
    with _LOCK:
        if lib.is_file():
            return lib
        if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
            raise RuntimeError("building the kernel emulator needs make and g++ on PATH")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
        try:
            proc = subprocess.run(["make", "-s", "-C", str(KERNEL_DIR), "emu", f"BUILD_DIR={tmp}"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"building the kernel emulator failed:\n{proc.stdout}\n{proc.stderr}")
            try:
                tmp.rename(dest)  # atomic publish; a concurrent builder may have won the race
            except OSError:
                if not lib.is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return lib
