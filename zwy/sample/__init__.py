"""Deterministic sample district of Beijing E-Town (亦庄): registry, HJ 212 logs, exports.

``generate_district(out_dir, days, scale, seed)`` writes the registry CSVs, one HJ 212
receiver log per device and day, GB18030 platform exports and ``planted.json``, the exact
truth the pipeline must reproduce (quarantined frames, exceedances, flag periods, ...).
"""

from zwy.sample.generate import Planted, generate_district, parse_days, sample

__all__ = ["Planted", "generate_district", "parse_days", "sample"]
