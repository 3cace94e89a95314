"""The RTL engine is linked into the SmartSSD xclbin: the register map agrees across the RTL
(fl_axil_ctrl.v), the host (host/device/rtl/regmap.py), the IP packaging (package_xo.tcl) and the
kernel description (kernel.xml); the link config has its compute unit on the cards' DDR; the
Makefile packages and links it with the build the host and the emulator assume."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

from fpga_kernels import KERNEL_DIR
from host.device.flow import RTL_KERNEL, RTL_N_MAX
from host.device.rtl.regmap import ARG_ORDER, REG

RTL = KERNEL_DIR / "rtl"
#: package_xo.tcl / kernel.xml names -> regmap names (the IP names pointers after their buffer)
_TCL_NAMES = {"CTRL": "control", "GIER": "gie", "IP_IER": "ier", "IP_ISR": "isr", "sim": "sim_ptr",
              "out_ids": "out_ids_ptr", "out_gains": "out_gains_ptr", "out_weights": "out_weights_ptr",
              "out_stats": "out_stats_ptr"}


def _rtl_offsets() -> dict[str, int]:
    """Offsets fl_axil_ctrl.v decodes: ``assign x = r[i]`` / ``{r[hi], r[lo]}`` (word i at 4*i)."""
    src = (RTL / "fl_axil_ctrl.v").read_text()
    out = {}
    for name, hi, lo in re.findall(r"assign\s+(\w+)\s*=\s*(?:\{r\[(\d+)\],\s*)?r\[(\d+)\]\}?;", src):
        out[name] = 4 * int(lo)
    reads = dict(re.findall(r"(\d+):\s*rdata <= (status|cycles)\[?", src)[i][::-1] for i in range(2))
    out.update({k: 4 * int(v) for k, v in reads.items()})
    return out


def _tcl_registers() -> dict[str, tuple[int, int]]:
    src = (RTL / "package_xo.tcl").read_text()
    block = re.search(r"foreach \{name off size\} \{(.*?)\}", src, re.S).group(1)
    regs = re.findall(r"(\w+)\s+(0x[0-9A-Fa-f]+)\s+(\d+)", block)
    return {_TCL_NAMES.get(n, n): (int(o, 16), int(sz)) for n, o, sz in regs}


def test_register_map_agrees_across_rtl_host_packaging_and_kernel_xml():
    rtl = _rtl_offsets()
    for name in ARG_ORDER:
        assert rtl[name] == REG[name], f"{name}: fl_axil_ctrl.v {rtl[name]:#x}, regmap {REG[name]:#x}"
    assert rtl["status"] == REG["status"] and rtl["cycles"] == REG["cycles"]
    tcl = _tcl_registers()
    assert set(tcl) == set(REG), f"package_xo.tcl lacks {set(REG) - set(tcl)}, has extra {set(tcl) - set(REG)}"
    for name, (off, size) in tcl.items():
        assert off == REG[name], f"package_xo.tcl {name} at {off:#x}, regmap {REG[name]:#x}"
        assert size == (64 if name.endswith("_ptr") or name == "cycles" else 32), name
    ptrs = re.search(r"foreach ptr \{([^}]*)\}", (RTL / "package_xo.tcl").read_text()).group(1).split()
    assert {_TCL_NAMES.get(p, p) for p in ptrs} == {n for n in ARG_ORDER if n.endswith("_ptr")}
    kernel = ET.parse(RTL / "kernel.xml").getroot().find("kernel")
    args = sorted(kernel.find("args"), key=lambda a: int(a.get("id")))
    assert [_TCL_NAMES.get(a.get("name"), a.get("name")) for a in args] == list(ARG_ORDER)
    for a in args:
        name = _TCL_NAMES.get(a.get("name"), a.get("name"))
        assert int(a.get("offset"), 16) == REG[name], name
        assert a.get("port") == ("m_axi_gmem" if name.endswith("_ptr") else "s_axi_control"), name
    assert kernel.get("name") == RTL_KERNEL


def _cfg() -> list[str]:
    return [line.strip() for line in (KERNEL_DIR / "nessa_smartssd.cfg").read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_link_config_places_the_rtl_engine_on_the_ddr_the_other_kernels_use():
    cfg = _cfg()
    assert "nk=nessa_fl_rtl:1:nessa_fl_rtl_1" in cfg
    sps = dict(line[3:].split(":", 1) for line in cfg if line.startswith("sp="))
    assert sps["nessa_fl_rtl_1.m_axi_gmem"] == sps["nessa_greedy_1.m_axi_gmem"] == sps["nessa_features_1.m_axi_gmem"]
    freq = next(line for line in cfg if line.startswith("freqHz="))
    assert "nessa_fl_rtl_1" in freq.split(":", 1)[1].split(",")


def test_makefile_packages_and_links_the_rtl_engine(tmp_path):
    out = subprocess.run(["make", "-n", "-C", str(KERNEL_DIR), "hw", f"HW_DIR={tmp_path}", "VPP=v++", "VIVADO=vivado"],
                         capture_output=True, text=True, check=True).stdout.replace("\\\n", " ")
    xo = str(tmp_path / "nessa_fl_rtl.xo")
    pack = [line for line in out.splitlines() if "package_xo.tcl" in line]
    assert pack and xo in pack[0] and "vivado -mode batch" in pack[0]
    link = [line for line in out.splitlines() if " -l " in line and "nessa_smartssd.cfg" in line]
    assert link and xo in link[0] and "nessa_greedy.xo" in link[0]
    # the packaged build is the one the host routes by and the emulator's C++ model runs
    mk = (KERNEL_DIR / "Makefile").read_text()
    n_max = int(re.search(r"^RTL_N_MAX\s*\?=\s*(\d+)", mk, re.M).group(1))
    lanes = int(re.search(r"^RTL_LANES\s*\?=\s*(\d+)", mk, re.M).group(1))
    model = (RTL / "cmodel" / "nessa_fl_rtl.cpp").read_text()
    assert n_max == RTL_N_MAX == int(re.search(r"#define NESSA_FL_RTL_N_MAX (\d+)", model).group(1))
    assert lanes == int(re.search(r"#define NESSA_FL_RTL_LANES (\d+)", model).group(1))
    width = ET.parse(RTL / "kernel.xml").getroot().find("kernel/ports/port[@name='m_axi_gmem']").get("dataWidth")
    assert int(width) == 16 * lanes
