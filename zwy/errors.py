"""Exception hierarchy of the product.

Each module raises its own subclass with the context a person needs (file, line, rule).
Dual inheritance lets callers catch the builtin too (``except ValueError``).
"""

from __future__ import annotations


class ZwyError(Exception):
    """Base of every error this product raises on purpose."""


class ConfigError(ZwyError, ValueError):
    """Settings or reference data are missing or inconsistent."""


class InputFileError(ZwyError, OSError):
    """An input file cannot be read at all (missing, empty, binary, wrong encoding)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WarehouseError(ZwyError, RuntimeError):
    """The DuckDB warehouse cannot be opened, migrated or loaded."""


class AccountingError(WarehouseError):
    """The nothing-lost invariant failed: frames found != loaded + quarantined for a file."""
