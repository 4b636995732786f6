"""Real-data tier: the packets and receiver log collected in ../shared/real/hj212."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from hj212_helpers import parse_both

from zwy.hj212.reader import read_log_lines

REAL = Path(__file__).parents[2] / ".." / "shared" / "real" / "hj212"
PACKETS_JSONL = REAL / "packets.jsonl"
RX_LOG = REAL / "receiver_rx_release.log"

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not REAL.is_dir(), reason=f"real HJ 212 corpus {REAL.resolve()} absent"),
]

VARIANTS = {
    "hj212-2017-appendixA": "appendix_a",
    "crc16-modbus(high byte first)": "modbus",
    "crc16-modbus(byte-swapped)": "modbus_swapped",
    "no-match": "none",
}


def load_packets() -> list[dict[str, object]]:
    return [json.loads(line) for line in PACKETS_JSONL.read_text("utf-8").splitlines() if line]


def test_recorded_variant_names_are_known() -> None:
    names = {str(p["crc_variant"]) for p in load_packets()}
    assert names <= set(VARIANTS), names - set(VARIANTS)


def test_crc_variant_matches_recorded(tmp_path: Path) -> None:
    rows = load_packets()
    path = tmp_path / "packets.log"
    path.write_text("".join(str(r["packet"]) + "\r\n" for r in rows), encoding="utf-8")
    res = parse_both(read_log_lines(path))
    assert res.packets.height == len(rows)
    got = res.packets["crc_variant"].to_list()
    expected = [VARIANTS[str(r["crc_variant"])] for r in rows]
    assert got == expected
    # The recorded length check agrees too.
    length_ok = res.packets.select(pl.col("declared_length") == pl.col("actual_length"))
    assert length_ok.to_series().to_list() == [bool(r["len_valid"]) for r in rows]
    assert res.packets["st"].to_list() == [str(r["st"]) for r in rows]
    assert res.packets["cn"].to_list() == [str(r["cn"]) for r in rows]


def test_receiver_log_frames_and_noise() -> None:
    text = RX_LOG.read_bytes().decode("utf-8")
    expected_frames = len(re.findall(r"##\d{4}", text))
    lines = read_log_lines(RX_LOG, display_name="rx.log")
    res = parse_both(lines)
    assert res.packets.height == expected_frames > 0
    framed = set(res.packets["line"].to_list())
    texts = lines["text"].to_list()
    stamps = [
        i + 1 for i, t in enumerate(texts) if re.fullmatch(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]", t)
    ]
    modbus = [i + 1 for i, t in enumerate(texts) if re.fullmatch(r"[0-9A-F]{16,}", t)]
    assert stamps and modbus
    assert not framed & (set(stamps) | set(modbus))
    assert (
        res.noise_lines
        == len(stamps) + len(modbus)
        == res.lines_total - expected_frames - res.blank_lines
    )
    assert set(res.values["line"].to_list()) <= framed
    pf = res.per_file().row(0, named=True)
    assert pf["frames_found"] == pf["frames_loaded"] + pf["frames_quarantined"] == expected_frames
    # ST=101 is not in Table 5; the byte-swapped Modbus device is accepted when tolerant.
    by_rule = dict(zip(res.packets["crc_variant"], res.packets["rule"], strict=True))
    assert by_rule.get("modbus_swapped", "missing") is None
    assert "st" in res.packets["rule"].to_list()
