"""Errors raised by the HJ 212 module.

A rule failure inside a frame is data (a quarantine row), never an exception; these are for
inputs that cannot be read at all and for wrong configuration.
"""

from __future__ import annotations

from zwy.errors import ConfigError, InputFileError, ZwyError


class LogReadError(InputFileError):
    """An HJ 212 log file cannot be read: missing, empty, binary or not UTF-8.

    Attributes:
        path: the file as named to the user.
        reason: what is wrong, with the byte offset and line where it applies.
        byte_offset: 0-based offset of the offending byte, when there is one.
        line: 1-based line of the offending byte, when there is one.

    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        byte_offset: int | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(path, reason)
        self.byte_offset = byte_offset
        self.line = line


class CrcPolicyError(ConfigError):
    """A CRC policy name is not ``tolerant`` or ``strict``."""


class StagedValuesError(ZwyError, ValueError):
    """A staged values part is not what :func:`zwy.hj212.values.write_staged` writes."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
