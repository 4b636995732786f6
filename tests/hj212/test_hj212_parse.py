"""Golden and negative tests of zwy.hj212.parse on tiny hand-made packets."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hj212_helpers import (
    APPENDIX_A_EXAMPLE,
    MN,
    data_2011,
    lines_frame,
    parse_both,
    parse_texts,
    sign,
)

from zwy.contracts import PACKETS, QUARANTINE, VALUES
from zwy.hj212.exceptions import CrcPolicyError

SH = ZoneInfo("Asia/Shanghai")


def only_packet(texts: list[str], **kwargs: object) -> dict[str, object]:
    res = parse_texts(texts, **kwargs)
    assert res.packets.height == 1, res.packets
    return res.packets.row(0, named=True)


def test_appendix_a_example_accepted() -> None:
    res = parse_texts([APPENDIX_A_EXAMPLE])
    pkt = res.packets.row(0, named=True)
    assert pkt["status"] == "ok"
    assert pkt["crc_variant"] == "appendix_a"
    assert pkt["declared_length"] == pkt["actual_length"] == 101
    assert (pkt["qn"], pkt["st"], pkt["cn"], pkt["pw"]) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
    )
    assert pkt["mn"] == "010000A8900016F000169DC0"
    assert pkt["flag"] == 5 and pkt["protocol"] == "2017"
    assert pkt["raw"] == APPENDIX_A_EXAMPLE
    # CN 1062 is a parameter command, not data: no values.
    assert res.values.is_empty()
    assert res.quarantine.is_empty()


def test_output_schemas_match_contracts() -> None:
    res = parse_texts([APPENDIX_A_EXAMPLE, sign(data_2011()), "noise", "##0001x"])
    assert res.packets.schema == PACKETS
    assert res.values.schema == VALUES
    assert res.quarantine.schema == QUARANTINE
    empty = parse_texts(["just noise", ""])
    assert empty.packets.schema == PACKETS and empty.values.schema == VALUES
    assert empty.quarantine.schema == QUARANTINE


@pytest.mark.parametrize(
    ("variant", "tolerant", "strict"),
    [
        ("appendix_a", "ok", "ok"),
        ("modbus", "ok", "quarantined"),
        ("modbus_swapped", "ok", "quarantined"),
        ("none", "quarantined", "quarantined"),
    ],
)
def test_crc_variant_and_policy(variant: str, tolerant: str, strict: str) -> None:
    frame = sign(data_2011(), variant)
    for policy, expected in (("tolerant", tolerant), ("strict", strict)):
        pkt = only_packet([frame], default_policy=policy)
        assert pkt["crc_variant"] == variant
        assert pkt["status"] == expected, (policy, pkt["reason"])
        if expected == "quarantined":
            assert pkt["rule"] == "crc"
            assert f"CRC '{frame[-4:]}'" in str(pkt["reason"])
            assert "expected Appendix A CRC" in str(pkt["reason"]) or "accepts only" in str(
                pkt["reason"]
            )


def test_policy_per_mn_overrides_default() -> None:
    strict_mn, other_mn = "STRICT000000001", "TOLER000000002"
    texts = [
        sign(data_2011(mn=strict_mn), "modbus"),
        sign(data_2011(mn=other_mn), "modbus"),
    ]
    res = parse_texts(texts, policies={strict_mn: "strict"})
    status = dict(zip(res.packets["mn"], res.packets["status"], strict=True))
    assert status == {strict_mn: "quarantined", other_mn: "ok"}


def test_policy_per_mn_overrides_a_strict_default_and_listing_the_default_changes_nothing() -> None:
    strict_mn, other_mn = "STRICT000000001", "TOLER000000002"
    texts = [
        sign(data_2011(mn=strict_mn), "modbus"),
        sign(data_2011(mn=other_mn), "modbus"),
    ]
    res = parse_texts(
        texts, policies={strict_mn: "strict", other_mn: "tolerant"}, default_policy="strict"
    )
    status = dict(zip(res.packets["mn"], res.packets["status"], strict=True))
    assert status == {strict_mn: "quarantined", other_mn: "ok"}
    listed = parse_texts(texts, policies={strict_mn: "tolerant", other_mn: "tolerant"})
    assert listed.packets.equals(parse_texts(texts).packets)
    assert listed.packets["status"].to_list() == ["ok", "ok"]


def test_unknown_policy_is_a_config_error() -> None:
    with pytest.raises(CrcPolicyError, match="lenient"):
        parse_texts([APPENDIX_A_EXAMPLE], default_policy="lenient")


def test_lowercase_hex_crc_accepted() -> None:
    frame = sign(data_2011())
    lower = frame[:-4] + frame[-4:].lower()
    assert lower != frame or not any(c.isalpha() for c in frame[-4:])
    pkt = only_packet([lower])
    assert pkt["status"] == "ok" and pkt["crc_variant"] == "appendix_a"


def test_2005_packet_codes_mapped_and_flags_attached() -> None:
    data = (
        "ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817;"
        "B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&"
    )
    res = parse_texts([sign(data)])
    pkt = res.packets.row(0, named=True)
    assert pkt["status"] == "ok" and pkt["protocol"] == "2005" and pkt["flag"] is None
    got = res.values.select("pollutant", "code_raw", "code_status", "field", "value", "flag")
    assert got.rows() == [
        ("w00000", "B01", "mapped_2005", "Rtd", 36.91, None),
        ("w01018", "011", "mapped_2005", "Rtd", 231.0, "N"),
        ("w21003", "060", "mapped_2005", "Rtd", 1.803, "N"),
    ]
    assert res.values["data_time"].to_list() == [datetime(2016, 8, 24, 0, 38, 17, tzinfo=SH)] * 3
    assert res.values["mn"].unique().to_list() == ["LD130133000015"]
    assert res.values["cn"].unique().to_list() == ["2011"]


def test_2051_minute_packet_avg_min_max_cou() -> None:
    cp = (
        "w00000-Cou=12.5,w00000-Flag=N;"
        "w01018-Avg=25.1,w01018-Min=20.0,w01018-Max=30.2,w01018-Cou=0.31,w01018-Flag=N"
    )
    res = parse_texts([sign(data_2011(cn="2051", dt="20240501121000", cp=cp))])
    assert res.packets["status"].to_list() == ["ok"]
    got = res.values.select("pollutant", "field", "value", "flag", "code_status", "field_known")
    assert got.rows() == [
        ("w00000", "Cou", 12.5, "N", "hj212_2017", True),
        ("w01018", "Avg", 25.1, "N", "hj212_2017", True),
        ("w01018", "Min", 20.0, "N", "hj212_2017", True),
        ("w01018", "Max", 30.2, "N", "hj212_2017", True),
        ("w01018", "Cou", 0.31, "N", "hj212_2017", True),
    ]


def test_flag_before_value_and_separated_by_semicolon() -> None:
    cp = "a34013-Flag=T;a21026-Rtd=3;a34013-Rtd=1.5;a34013-ZsRtd=2.5"
    res = parse_texts([sign(data_2011(st="31", cp=cp))])
    v = res.values
    keys = [f + p for f, p in zip(v["field"], v["pollutant"], strict=True)]
    got = dict(zip(keys, v["flag"], strict=True))
    assert got == {"Rtda21026": None, "Rtda34013": "T", "ZsRtda34013": "T"}


def test_split_packets_pnum_pno_inherit_datatime() -> None:
    qn = "20191112091100598"
    part1 = data_2011(
        qn=qn, st="31", cn="2051", flag="6", dt="20191112090000",
        cp="a01006-Avg=101.85,a01006-Flag=N", extra_header="PNUM=2;PNO=1",
    )  # fmt: skip
    # The second part puts PNO before PNUM (as a real guocay packet does) and has no DataTime.
    part2 = (
        f"QN={qn};ST=31;CN=2051;PW=123456;MN={MN};Flag=6;PNO=0002;PNUM=0002;"
        "CP=&&a34013-Avg=5.5,a34013-Flag=N&&"
    )
    res = parse_texts([sign(part1), sign(part2)])
    assert res.packets["status"].to_list() == ["ok", "ok"]
    assert res.packets.select("pnum", "pno").rows() == [(2, 1), (2, 2)]
    when = datetime(2019, 11, 12, 9, 0, tzinfo=SH)
    assert res.packets["data_time"].to_list() == [when, when]
    assert res.values.select("pollutant", "value", "data_time").rows() == [
        ("a01006", 101.85, when),
        ("a34013", 5.5, when),
    ]


def test_vendor_codes_kept() -> None:
    cp = "a99948-Rtd=1.0;ua19004-Rtd=2.0;831-Rtd=3.128,831-Flag=N;a21026-Rtd=4"
    res = parse_texts([sign(data_2011(st="31", cp=cp))])
    got = res.values.select("pollutant", "code_raw", "code_status", "flag").rows()
    assert got == [
        ("a99948", "a99948", "vendor", None),
        ("ua19004", "ua19004", "vendor", None),
        ("831", "831", "vendor", "N"),
        ("a21026", "a21026", "hj212_2017", None),
    ]


def test_unknown_suffix_kept_with_field_known_false() -> None:
    cp = "a21002-ZsCou=1.5;a21002-Total=9;a21002-Rtd=3,a21002-Flag=N"
    res = parse_texts([sign(data_2011(st="31", cp=cp))])
    got = res.values.select("field", "field_known", "value", "flag").rows()
    assert got == [("ZsCou", False, 1.5, "N"), ("Total", False, 9.0, "N"), ("Rtd", True, 3.0, "N")]


def test_st39_flag_without_code_is_a_plain_row() -> None:
    # Real construction-dust packet (sCair log): "Flag=N" after the value, without a code.
    frame = (
        "##0121QN=20250131202809340;ST=39;CN=2011;PW=123456;MN=0507A010003242;Flag=4;"
        "CP=&&DataTime=20250131202809;a34001-Rtd=92;Flag=N&&BF41"
    )
    res = parse_texts([frame])
    assert res.packets["status"].to_list() == ["ok"]
    got = res.values.select("pollutant", "field", "value", "value_text", "flag").rows()
    assert got == [("a34001", "Rtd", 92.0, "92", None), (None, "Flag", None, "N", None)]


def test_datatime_with_milliseconds_accepted() -> None:
    pkt = only_packet([sign(data_2011(dt="20160824003817250"))])
    assert pkt["status"] == "ok"
    assert pkt["data_time"] == datetime(2016, 8, 24, 0, 38, 17, 250_000, tzinfo=SH)


def test_request_without_datatime_accepted_without_values() -> None:
    # A platform's request for real-time data (CN 2011, empty CP) carries no data.
    res = parse_texts([sign("QN=20170516010101001;ST=22;CN=2011;PW=123456;MN=ABCD;Flag=3;CP=&&&&")])
    assert res.packets["status"].to_list() == ["ok"]
    assert res.values.is_empty()


def test_non_numeric_value_kept_as_text() -> None:
    res = parse_texts([sign(data_2011(cp="w01018-Rtd=abc,w01018-Flag=D;w21003-Rtd=-1.5"))])
    got = res.values.select("value", "value_text", "flag").rows()
    assert got == [(None, "abc", "D"), (-1.5, "-1.5", None)]


def test_chinese_text_counts_utf8_bytes() -> None:
    data = data_2011(cn="3020", dt=None, cp="i11001-Info=//设备正常//")
    frame = sign(data)
    assert int(frame[2:6]) == len(data.encode("utf-8")) > len(data)
    pkt = only_packet([frame])
    assert pkt["status"] == "ok", pkt["reason"]
    assert pkt["actual_length"] == len(data.encode("utf-8"))


# --- one negative test per rule ---------------------------------------------------------------


def rule_of(texts: list[str]) -> tuple[str, str]:
    res = parse_texts(texts)
    bad = res.packets.filter(pl.col("status") == "quarantined")
    assert bad.height == 1, res.packets
    q = res.quarantine.row(0, named=True)
    row = bad.row(0, named=True)
    assert (q["rule"], q["reason"], q["line"], q["raw"]) == (
        row["rule"],
        row["reason"],
        row["line"],
        row["raw"],
    )
    return str(row["rule"]), str(row["reason"])


def test_rule_length() -> None:
    frame = sign(data_2011())
    declared = int(frame[2:6])
    wrong = f"##{declared - 3:04d}" + frame[6:]
    rule, reason = rule_of([wrong])
    assert rule == "length"
    assert reason == f"declared data length {declared - 3}, actual {declared} bytes"


def test_rule_truncated() -> None:
    frame = sign(data_2011())
    declared = int(frame[2:6])
    cut = frame[:-30]
    rule, reason = rule_of([cut])
    assert rule == "truncated"
    assert reason.startswith(f"frame ends after {declared + 4 - 30} of {declared + 4} declared")


def test_rule_crc() -> None:
    frame = sign(data_2011(), "none")
    rule, reason = rule_of([frame])
    assert rule == "crc"
    expected = sign(data_2011())[-4:]
    assert reason == (
        f"CRC '{frame[-4:]}' matches no known algorithm: expected Appendix A CRC {expected}"
    )


def test_rule_syntax_cp_not_closed() -> None:
    data = data_2011()[:-2]  # drop the closing "&&"
    rule, reason = rule_of([sign(data)])
    assert rule == "syntax"
    assert "CP area not closed by &&" in reason


def test_rule_syntax_no_cp() -> None:
    rule, reason = rule_of([sign("ST=32;CN=2011;PW=1;MN=X;DataTime=20240101000000")])
    assert rule == "syntax" and "no 'CP=&&'" in reason


def test_rule_syntax_header_field() -> None:
    rule, reason = rule_of([sign(data_2011(extra_header="GARBAGE"))])
    assert rule == "syntax"
    assert reason == "header field 'GARBAGE' is not KEY=value"


def test_rule_syntax_repeated_header_field() -> None:
    # Two MNs: whose data these are would be a guess, so the frame goes to quarantine.
    rule, reason = rule_of([sign(data_2011(mn="FIRST", extra_header="MN=SECOND"))])
    assert rule == "syntax"
    assert reason == "header field 'MN' appears more than once: the frame is ambiguous"
    # The same key in the CP area (two DataTimes there) is not a header repeat.
    res = parse_texts([sign(data_2011(cp="DataTime=20240501120000;w01018-Rtd=1"))])
    assert res.packets.get_column("status").to_list() == ["ok"]


@pytest.mark.parametrize(
    ("dt", "shown"),
    [("20241301000000", "20241301000000"), ("2024050112000", "2024050112000"), ("", "")],
)
def test_rule_datatime(dt: str, shown: str) -> None:
    rule, reason = rule_of([sign(data_2011(dt=dt))])
    assert rule == "datatime"
    assert reason == f"DataTime '{shown}' is not a valid YYYYMMDDhhmmss[zzz] Beijing time"


def test_rule_datatime_missing_with_values() -> None:
    rule, reason = rule_of([sign(data_2011(dt=None))])
    assert rule == "datatime"
    assert reason.startswith("DataTime missing in a CN 2011 data packet")


def test_rule_cn() -> None:
    rule, reason = rule_of([sign(data_2011(cn="2999"))])
    assert rule == "cn"
    assert reason == "CN 2999 is not a command code of HJ 212-2017 Table 9 or HJ/T 212-2005"


def test_unverified_2025_cn_not_known() -> None:
    rule, _ = rule_of([sign(data_2011(cn="9015", dt=None, cp=""))])
    assert rule == "cn"


def test_rule_st() -> None:
    rule, reason = rule_of([sign(data_2011(st="101"))])
    assert rule == "st"
    assert reason == "ST 101 is not a system code of HJ 212-2017 Table 5"


@pytest.mark.parametrize(
    ("flag", "needle"),
    [("300", "Flag '300' is not an integer 0-255"), ("x", "Flag 'x' is not an integer 0-255"),
     ("16", "Flag 16 has version bits 04")],
)  # fmt: skip
def test_rule_flag(flag: str, needle: str) -> None:
    rule, reason = rule_of([sign(data_2011(flag=flag))])
    assert rule == "flag"
    assert needle in reason


@pytest.mark.parametrize(("flag", "protocol"), [("4", "2017"), ("3", "2005"), ("9", "2025?")])
def test_flag_version_bits_give_protocol(flag: str, protocol: str) -> None:
    pkt = only_packet([sign(data_2011(flag=flag))])
    assert pkt["status"] == "ok" and pkt["protocol"] == protocol


def test_rule_mn() -> None:
    data = data_2011().replace(f";MN={MN}", "")
    rule, reason = rule_of([sign(data)])
    assert rule == "mn"
    assert reason.startswith("MN missing")


def test_rule_duplicate() -> None:
    frame = sign(data_2011())
    res = parse_both(lines_frame([frame, "noise", frame], source_file="a.log"))
    assert res.packets["status"].to_list() == ["ok", "quarantined"]
    q = res.quarantine.row(0, named=True)
    assert (q["rule"], q["line"]) == ("duplicate", 3)
    assert q["reason"].startswith("duplicate of a.log:1")
    # Only the first copy's values are loaded.
    assert res.values["line"].unique().to_list() == [1]


def test_duplicate_across_files_keeps_first_file() -> None:
    frame = sign(data_2011())
    lines = pl.concat([lines_frame([frame], "b.log"), lines_frame(["x", frame], "a.log")])
    res = parse_both(lines)
    q = res.quarantine.row(0, named=True)
    assert (q["source_file"], q["reason"].split(" (")[0]) == ("b.log", "duplicate of a.log:2")


# --- lines, prefixes, noise -------------------------------------------------------------------


def test_prefix_noise_and_blank_lines_counted() -> None:
    f1 = sign(data_2011(dt="20240501000003"))
    f2 = sign(data_2011(dt="20240501000004"))
    texts = [
        "[2020-09-22 18:20:30]",
        f"[2024-05-01 00:00:03] {f1}",
        "0E0F00000006010400000064",
        "",
        "   ",
        f"RECV:{f2}  ",
        "## not a frame ##12",
    ]
    res = parse_texts(texts)
    assert (res.lines_total, res.noise_lines, res.blank_lines) == (7, 3, 2)
    assert res.packets["raw"].to_list() == [f1, f2]
    assert res.packets["line"].to_list() == [2, 6]
    assert res.packets["status"].to_list() == ["ok", "ok"]
    per_file = res.per_file().row(0, named=True)
    assert per_file == {
        "source_file": "test.log",
        "lines_total": 7,
        "noise_lines": 3,
        "blank_lines": 2,
        "frames_found": 2,
        "frames_loaded": 2,
        "frames_quarantined": 0,
        "values_loaded": 4,
    }


def test_two_frames_on_one_line() -> None:
    f1 = sign(data_2011(dt="20240501000003"))
    f2 = sign(data_2011(dt="20240501000004"), "modbus")
    res = parse_texts([f"[t] {f1}{f2}", f"{f1}##{f2}"])
    assert res.packets["line"].to_list() == [1, 1, 2, 2]
    # "####": the frame start is the "##" right before the digits.
    assert res.packets["raw"].to_list() == [f1, f2, f1 + "##", f2]
    assert res.packets["rule"].to_list() == [None, None, "length", "duplicate"]


def test_frame_after_extra_hash() -> None:
    frame = sign(data_2011())
    res = parse_texts([f"###{frame[2:]}", f"#{frame}"])
    assert res.packets["raw"].to_list() == [frame, frame]
    assert res.packets["rule"].to_list() == [None, "duplicate"]


def test_per_file_counts_cover_files_without_frames() -> None:
    lines = pl.concat([lines_frame(["noise"], "a.log"), lines_frame([APPENDIX_A_EXAMPLE], "b.log")])
    pf = parse_both(lines).per_file()
    assert pf.select("source_file", "frames_found", "noise_lines").rows() == [
        ("a.log", 0, 1),
        ("b.log", 1, 0),
    ]
    assert (pf["frames_found"] == pf["frames_loaded"] + pf["frames_quarantined"]).all()


def test_never_raises_on_garbage() -> None:
    rng = random.Random(212)
    good = [sign(data_2011(dt=f"202405010000{i:02d}")) for i in range(10)]
    alphabet = "#0123456789;=,&-CPSTNMQWFlagDtime中\t\r "
    texts: list[str] = []
    for i in range(600):
        kind = i % 4
        if kind == 0:
            texts.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80))))
        elif kind == 1:
            chars = list(rng.choice(good))
            for _ in range(rng.randrange(1, 4)):
                chars[rng.randrange(len(chars))] = rng.choice(alphabet)
            texts.append("".join(chars))
        elif kind == 2:
            frame = rng.choice(good)
            texts.append(frame[: rng.randrange(0, len(frame))])
        else:
            texts.append("##" + f"{rng.randrange(10000):04d}" + rng.choice(good)[6:])
    res = parse_texts(texts)
    assert set(res.packets["status"].unique()) <= {"ok", "quarantined"}
    q = res.packets.filter(pl.col("status") == "quarantined")
    assert q["rule"].null_count() == 0 and q["reason"].null_count() == 0
    assert res.quarantine.height == q.height
    pf = res.per_file()
    assert (pf["frames_found"] == pf["frames_loaded"] + pf["frames_quarantined"]).all()
    assert (
        res.packets.filter(pl.col("status") == "ok")["rule"].null_count()
        == res.packets.filter(pl.col("status") == "ok").height
    )


def test_item_with_two_equals_kept_whole() -> None:
    res = parse_texts([sign(data_2011(cp="w01018-Rtd=1=2,w01018-Flag=N;w21003-Rtd=3"))])
    got = res.values.select("field", "value", "value_text", "flag").rows()
    assert got == [("Rtd", None, "1=2", "N"), ("Rtd", 3.0, "3", None)]


def test_ampersand_in_value_and_mixed_frames() -> None:
    odd = sign(data_2011(dt="20240501000001", cp="w01018-Rtd=1&2;w21003-Rtd=3"))
    normal = sign(data_2011(dt="20240501000002"))
    res = parse_texts([normal, odd, normal.replace("000002", "000003")])
    assert res.packets["status"].to_list() == ["ok", "ok", "quarantined"]  # last: CRC
    odd_vals = res.values.filter(pl.col("line") == 2).select("value_text").to_series().to_list()
    assert odd_vals == ["1&2", "3"]
    assert res.values["line"].to_list() == [1, 1, 2, 2]


def test_header_fields_of_broken_frames_still_reported() -> None:
    data = data_2011()[:-2]  # CP not closed
    pkt = only_packet([sign(data)])
    assert (pkt["rule"], pkt["st"], pkt["cn"], pkt["mn"]) == ("syntax", "32", "2011", MN)


def test_empty_input() -> None:
    res = parse_both(lines_frame([]))
    assert (res.lines_total, res.noise_lines, res.blank_lines) == (0, 0, 0)
    assert res.packets.is_empty() and res.per_file().is_empty()


def test_first_line_without_equals_does_not_break_items() -> None:
    # The first item of the first frame has no "=" (a header syntax error).
    first = sign("GARBAGE;" + data_2011(dt="20240501000001"))
    second = sign(data_2011(dt="20240501000002"))
    res = parse_texts([first, second])
    assert res.packets["rule"].to_list() == ["syntax", None]
    assert res.values["line"].unique().to_list() == [2]


def test_huge_garbage_frame_is_quick_and_quarantined() -> None:
    import time

    frame = "##0100" + "x" * 3_000_000 + "ABCD"
    t0 = time.perf_counter()
    pkt = only_packet([frame])
    assert time.perf_counter() - t0 < 10
    assert (pkt["rule"], pkt["crc_variant"]) == ("length", "none")


def test_history_request_gives_no_values() -> None:
    # A platform asks for minute data of a period: CN 2051 with BeginTime/EndTime, no data.
    data = (
        "QN=20170516010101001;ST=22;CN=2051;PW=123456;MN=ABCDEFG1234567;Flag=3;"
        "CP=&&BeginTime=20170506000000,EndTime=20170510000000&&"
    )
    res = parse_texts([sign(data, "modbus")])
    assert res.packets["status"].to_list() == ["ok"]
    assert res.values.is_empty()


def test_empty_value_and_item_without_equals() -> None:
    res = parse_texts([sign(data_2011(cp="w01018-Rtd=,w01018-Flag=N;Standalone;w21003-Rtd=2"))])
    got = res.values.select("pollutant", "field", "value", "value_text", "flag").rows()
    assert got == [
        ("w01018", "Rtd", None, "", "N"),
        (None, "Standalone", None, None, None),
        ("w21003", "Rtd", 2.0, "2", None),
    ]
