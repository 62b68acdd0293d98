"""The small family of errors Tollgate raises on purpose.

Every layer raises one of these; `serving/` maps them to HTTP status codes in one place and the CLI maps
them to exit codes, so a caller always learns *which* field or row was wrong instead of reading a traceback.
"""

from __future__ import annotations


class TollgateError(Exception):
    """Base of every error Tollgate raises deliberately."""


class InvalidInput(TollgateError):
    """Input refused at the edge; the message names the field (or column) and the record (or row)."""

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.row = row


class ModelUnavailable(TollgateError):
    """No usable model: registry unreachable, alias missing, or artifact unreadable."""


class FeaturesUnavailable(TollgateError):
    """The feature store could not be read."""


class PolicyInvalid(TollgateError):
    """A policy document failed validation or one of its embedded examples."""
