"""Column layout of each reference file: the pydantic schemas of ``features.reference``, flattened.

Nested values are flattened so a file stays one table: a contract's fuel rule becomes ``fuel_*`` columns
and its accessorial price list a JSON array; a shipment's requested services are ``;``-separated codes.
"""

from __future__ import annotations

from features.reference import ID_PATTERN, INVOICE_ID_PATTERN, ChargeCode, Currency, FuelKind
from features.reference_checks import Column
from features.schemas import CODE_PATTERN, Mode

_MODES = tuple(m.value for m in Mode)
_CODES = tuple(c.value for c in ChargeCode)
_MONEY_MAX = 10_000_000.0


def _code(name: str) -> Column:
    return Column(name, "text", pattern=CODE_PATTERN)


CONTRACT_COLUMNS: tuple[Column, ...] = (
    Column("contract_id", "text", pattern=ID_PATTERN),
    Column("mode", "choice", choices=_MODES),
    _code("carrier"), _code("origin"), _code("destination"),
    Column("effective_from", "date"),
    Column("effective_to", "date"),
    Column("base_rate", "number", gt=0, le=10_000),
    Column("minimum_charge", "number", ge=0, le=100_000),
    Column("fuel_kind", "choice", choices=tuple(k.value for k in FuelKind)),
    Column("fuel_base_price", "number", gt=0, le=20),
    Column("fuel_step", "number", gt=0, le=5),
    Column("fuel_pct_per_step", "number", ge=0, le=10),
    Column("accessorials", "json"),
)

FACT_COLUMNS: tuple[Column, ...] = (
    Column("shipment_id", "text", pattern=r"^.{1,64}$"),
    Column("mode", "choice", choices=_MODES),
    _code("carrier"), _code("origin"), _code("destination"),
    Column("distance_miles", "number", ge=0, le=20_000),
    Column("ship_date", "date"),
    Column("scheduled_departure", "timestamp"),
    Column("scheduled_arrival", "timestamp"),
    Column("actual_departure", "timestamp", nullable=True),
    Column("actual_arrival", "timestamp", nullable=True),
    Column("cancelled", "bool"),
    Column("proof_of_delivery_at", "timestamp", nullable=True),
    Column("pieces", "integer", ge=1, le=10_000),
    Column("actual_weight_kg", "number", gt=0, le=200_000),
    Column("length_cm", "number", nullable=True, gt=0, le=2_000),
    Column("width_cm", "number", nullable=True, gt=0, le=2_000),
    Column("height_cm", "number", nullable=True, gt=0, le=2_000),
    Column("consignee_pickup_at", "timestamp", nullable=True),
    Column("dwell_hours", "number", nullable=True, ge=0, le=24 * 365),
    Column("dangerous_goods", "bool"),
    Column("delivery_attempts", "integer", ge=0, le=20),
    Column("requested_services", "choices", nullable=True, choices=_CODES),
)

FUEL_COLUMNS: tuple[Column, ...] = (
    Column("week_start", "date"),
    Column("fuel_kind", "choice", choices=tuple(k.value for k in FuelKind)),
    Column("price_per_gallon", "number", gt=0, le=20),
)

INVOICE_COLUMNS: tuple[Column, ...] = (
    Column("invoice_id", "text", pattern=INVOICE_ID_PATTERN),
    _code("carrier"),
    Column("shipment_id", "text", pattern=r"^.{1,64}$"),
    Column("mode", "choice", choices=_MODES),
    Column("invoice_date", "date"),
    Column("received_at", "timestamp", nullable=True),
    Column("currency", "choice", choices=tuple(c.value for c in Currency)),
    Column("total", "number", ge=0, le=_MONEY_MAX),
    Column("billed_weight_kg", "number", nullable=True, gt=0, le=200_000),
)

LINE_COLUMNS: tuple[Column, ...] = (
    Column("invoice_id", "text", pattern=INVOICE_ID_PATTERN),
    Column("line_no", "integer", ge=1, le=100),
    Column("code", "choice", choices=_CODES),
    Column("amount", "number", ge=0, le=_MONEY_MAX),
    Column("quantity", "number", nullable=True, ge=0, le=_MONEY_MAX),
)

DATE_COLUMNS = frozenset({"effective_from", "effective_to", "ship_date", "week_start", "invoice_date"})
"""Calendar-day columns: written as YYYY-MM-DD, held in frames as UTC-midnight timestamps."""

__all__ = ["CONTRACT_COLUMNS", "DATE_COLUMNS", "FACT_COLUMNS", "FUEL_COLUMNS", "INVOICE_COLUMNS",
           "LINE_COLUMNS"]
