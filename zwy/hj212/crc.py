"""CRC algorithms seen on HJ 212 packets (scalar reference versions).

Source: HJ 212-2017 Appendix A (``ANSI CRC16``), as restated and verified in
``shared/domain/BRIEF.md`` §1.8. Field devices also sign with CRC-16/MODBUS, high byte first
or byte-swapped. These scalar functions are the reference; the parser uses a vectorised
version over whole columns that must agree with them.
"""

from __future__ import annotations


def _table_appendix_a() -> list[int]:
    # Appendix A carries one byte of state between input bytes: reg = (reg >> 8) ^ b,
    # so the whole CRC is a walk through a 256-entry table indexed by that byte.
    table = []
    for x in range(256):
        reg = x
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
        table.append(reg)
    return table


TABLE_APPENDIX_A: list[int] = _table_appendix_a()


def _table_modbus() -> list[int]:
    # CRC-16/MODBUS one byte at a time: reg = (reg >> 8) ^ TABLE_MODBUS[(reg ^ b) & 0xFF].
    table = []
    for x in range(256):
        reg = x
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
        table.append(reg)
    return table


TABLE_MODBUS: list[int] = _table_modbus()


def crc_appendix_a(data: bytes) -> int:
    """Return the HJ 212-2017 Appendix A CRC16 of ``data`` (the data segment only)."""
    reg = 0xFFFF
    for b in data:
        reg = TABLE_APPENDIX_A[(reg >> 8) ^ b]
    return reg


def crc_modbus(data: bytes) -> int:
    """Return CRC-16/MODBUS of ``data`` (poly 0xA001 reflected, init 0xFFFF)."""
    reg = 0xFFFF
    for b in data:
        reg ^= b
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
    return reg


def swap_bytes(crc: int) -> int:
    """Return ``crc`` with its two bytes swapped (the ``modbus_swapped`` variant)."""
    return ((crc & 0xFF) << 8) | (crc >> 8)


def sign(data_segment: str, variant: str = "appendix_a") -> str:
    """Return a full frame ``##NNNN<data>CCCC`` for ``data_segment`` (no CRLF).

    Args:
        data_segment: the text between the length field and the CRC.
        variant: ``appendix_a``, ``modbus``, ``modbus_swapped`` or ``none`` (a CRC that
            matches no algorithm, as edited packets carry).

    """
    raw = data_segment.encode("utf-8")
    if variant == "appendix_a":
        crc = crc_appendix_a(raw)
    elif variant == "modbus":
        crc = crc_modbus(raw)
    elif variant == "modbus_swapped":
        crc = swap_bytes(crc_modbus(raw))
    elif variant == "none":
        # Flip bits so it matches neither algorithm: a packet edited after signing.
        crc = crc_appendix_a(raw) ^ 0x5A5A
        if crc in (crc_modbus(raw), swap_bytes(crc_modbus(raw))):
            crc ^= 0x0101
    else:
        raise ValueError(f"unknown CRC variant {variant!r}")
    return f"##{len(raw):04d}{data_segment}{crc:04X}"
