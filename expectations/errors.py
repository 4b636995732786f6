"""Exceptions of the controls package.

Dual inheritance (see :mod:`zwy.errors`): a catalog error is also a ``ValueError`` and a
:class:`~zwy.errors.ConfigError`, so the CLI's ``except ZwyError`` prints it cleanly.
"""

from __future__ import annotations

from zwy.errors import ConfigError, ZwyError


class ControlCatalogError(ConfigError):
    """A control, limit, unit or permit row is missing, malformed or inconsistent.

    The message names the file, the row id and the field that is wrong.
    """


class ControlRunError(ZwyError, RuntimeError):
    """Running the controls of a day failed (GX error, unreadable batch)."""
