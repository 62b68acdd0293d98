"""Placeholder for the OpenTelemetry per-request span retention fix (see docs/decisions.md)."""

from __future__ import annotations


def release_request_spans() -> None:
    """Apply the fix for BentoML 1.4.40's retained per-request spans (filled in from measurements)."""
    return None
