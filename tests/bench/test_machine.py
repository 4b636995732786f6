"""The benchmarks name the machine they measured on, down to the processor generation."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.run_benchmark import machine

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
cpu MHz\t\t: 2596.122

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: Other
"""


def test_machine_names_the_first_processors_family_and_model(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    got = machine(info)
    # Only the first block counts; "model name" is not taken for "model".
    assert got["cpu"] == "AMD EPYC (family 26 model 2)"
    assert got["cores"] == os.cpu_count()


def test_machine_without_cpuinfo_keeps_the_platforms_name(tmp_path: Path) -> None:
    got = machine(tmp_path / "missing")
    assert isinstance(got["cpu"], str) and "family" not in got["cpu"]
    assert got["python"].count(".") == 2
