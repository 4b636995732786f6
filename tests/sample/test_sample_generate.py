from __future__ import annotations

import hashlib
import time
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from zwy.sample import generate_district
from zwy.sample.generate import Planted, parse_days, sample


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    days = [date(2024, 5, 1), date(2024, 5, 2)]
    generate_district(tmp_path / "a", days, scale="test", seed=7)
    generate_district(tmp_path / "b", days, scale="test", seed=7)
    a, b = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
    assert a == b and len(a) > 8
    generate_district(tmp_path / "c", days, scale="test", seed=8)
    c = _hashes(tmp_path / "c")
    assert {k: v for k, v in a.items() if k.endswith(".log")} != {
        k: v for k, v in c.items() if k.endswith(".log")
    }


def test_a_day_does_not_depend_on_the_other_days(tmp_path: Path) -> None:
    generate_district(tmp_path / "one", [date(2024, 5, 2)], scale="test")
    generate_district(tmp_path / "two", [date(2024, 5, 1), date(2024, 5, 2)], scale="test")
    one = {k: v for k, v in _hashes(tmp_path / "one").items() if "2024-05-02" in k}
    two = {k: v for k, v in _hashes(tmp_path / "two").items() if "2024-05-02" in k}
    assert one == two and one


def test_test_scale_is_fast(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    planted = generate_district(tmp_path, [date(2024, 5, 1)], scale="test")
    assert time.perf_counter() - t0 < 2.0
    assert planted.exceedances and planted.quarantine


def test_manifest_round_trip(test_run: tuple[Path, Planted]) -> None:
    out, planted = test_run
    loaded = Planted.load(out / "planted.json")
    expected = planted.to_dict()
    expected.pop("seconds")
    got = loaded.to_dict()
    got.pop("seconds")
    assert got == expected
    keys = list(got)
    assert keys[:6] == ["seed", "scale", "days", "timezone", "inbox", "registry"]
    assert {
        "quarantine",
        "exceedances",
        "flatlined",
        "fault_periods",
        "flag_periods",
        "offline",
        "s_flag_share",
        "t_flag_periods",
        "gaps",
        "duplicates",
        "out_of_order",
        "late_packets",
        "split_frames",
        "unknown_mn",
        "vendor_codes",
        "noise_lines",
        "totals",
    } <= set(keys)
    assert all(v > 0 for v in planted.counts().values())


def test_parse_days() -> None:
    assert parse_days("2024-05-01") == [date(2024, 5, 1)]
    assert parse_days("2024-04-30..2024-05-02") == [
        date(2024, 4, 30),
        date(2024, 5, 1),
        date(2024, 5, 2),
    ]
    with pytest.raises(ValueError):
        parse_days("2024-05-02..2024-05-01")
    with pytest.raises(ValueError):
        parse_days("May 1st")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_district(tmp_path, [date(2024, 5, 1)], scale="huge")
    with pytest.raises(ValueError, match="no day"):
        generate_district(tmp_path, [], scale="test")


def test_cli_command(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(sample)
    app.command("noop")(lambda: None)  # two commands: "sample" is a subcommand, as mounted
    result = CliRunner().invoke(
        app, ["sample", str(tmp_path), "--days", "2024-05-01", "--scale", "test", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "planted exceedances" in result.output
    assert (tmp_path / "planted.json").is_file()
    bad = CliRunner().invoke(app, ["sample", str(tmp_path), "--days", "nope", "--scale", "test"])
    assert bad.exit_code != 0
