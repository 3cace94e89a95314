"""Kernel sources (HLS C++, RTL Verilog) shipped as package data; see fpga_kernels/README.md."""

from pathlib import Path

__all__ = ["KERNEL_DIR"]

#: Folder holding the kernel sources and the Makefile (``make -C <KERNEL_DIR> emu``).
KERNEL_DIR = Path(__file__).resolve().parent
