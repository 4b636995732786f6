"""Vectorised CRCs over many packets at once (numpy), agreeing with :mod:`zwy.hj212.crc`.

The packets are grouped by byte length and laid out as a 2-D ``uint8`` matrix per group, so
each step of the CRC is one numpy table lookup across every packet of that length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from zwy.hj212.crc import TABLE_APPENDIX_A

_T_A = np.asarray(TABLE_APPENDIX_A, dtype=np.uint16)


def _table_modbus() -> npt.NDArray[np.uint16]:
    out = np.zeros(256, dtype=np.uint16)
    for x in range(256):
        reg = x
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
        out[x] = reg
    return out


_T_M = _table_modbus()


def _grouped(data: Sequence[bytes], step: str) -> npt.NDArray[np.uint16]:
    out = np.empty(len(data), dtype=np.uint16)
    lengths = np.fromiter((len(d) for d in data), dtype=np.int64, count=len(data))
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        if length == 0:
            out[idx] = 0xFFFF
            continue
        buf = b"".join(data[int(i)] for i in idx)
        mat = np.frombuffer(buf, dtype=np.uint8).reshape(len(idx), int(length))
        reg = np.full(len(idx), 0xFFFF, dtype=np.uint16)
        if step == "appendix_a":
            for j in range(int(length)):
                reg = _T_A[(reg >> 8) ^ mat[:, j]]
        else:
            for j in range(int(length)):
                reg = (reg >> 8) ^ _T_M[(reg ^ mat[:, j]) & 0xFF]
        out[idx] = reg
    return out


def crc_appendix_a_many(data: Sequence[bytes]) -> npt.NDArray[np.uint16]:
    """Return the HJ 212-2017 Appendix A CRC of each item of ``data``."""
    return _grouped(data, "appendix_a")


def crc_modbus_many(data: Sequence[bytes]) -> npt.NDArray[np.uint16]:
    """Return CRC-16/MODBUS of each item of ``data``."""
    return _grouped(data, "modbus")
