"""Reference data for freight audit: charge codes, contracts, shipment facts, fuel index, invoices.

These are the records an invoice is checked *against*. Each schema is the single-record contract used
at the service edge (one invoice arriving over HTTP); the file loaders in ``features.reference_io``
apply the same constraints column-wise to whole files. Money is US dollars (see ``Currency``); dates
are calendar days in UTC; weights are kilograms; distances are statute miles.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from features.reference_pricing import (
    AIR_WEIGHT_INCREMENT_KG,
    IATA_DIM_DIVISOR_CM3_PER_KG,
    chargeable_weight_kg,
)
from features.schemas import CODE_PATTERN, Mode

CENT_TOLERANCE = Decimal("0.01")
"""Invoice lines may differ from the stated total by at most one cent (rounding per line)."""
INVOICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,39}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"


class ChargeCode(StrEnum):
    """What a carrier may bill. ``LINEHAUL`` and ``FUEL`` exist in every mode; the rest are accessorials.

    Air: ``SECURITY`` (TSA security surcharge, per kg), ``SCREENING`` (physical screening of cargo from
    an unknown shipper), ``HANDLING`` (terminal handling), ``STORAGE`` (warehouse storage after the free
    time, per started day), ``DANGEROUS_GOODS`` (DG acceptance check), ``PICKUP`` / ``DELIVERY`` (door
    service, only when ordered), ``REDELIVERY`` (each attempt after a failed first one), ``REBOOKING``
    (moving a booking to another flight at the shipper's request; never when the carrier cancelled).
    Road: ``DETENTION`` (truck held past free time, per started hour), ``LIFTGATE``, ``RESIDENTIAL``,
    ``INSIDE_DELIVERY``, ``REDELIVERY``, ``LAYOVER`` (driver held overnight), ``LUMPER`` (paid unloading
    labour), ``HAZMAT``.
    """

    LINEHAUL = "linehaul"
    FUEL = "fuel"
    SECURITY = "security"
    SCREENING = "screening"
    HANDLING = "handling"
    STORAGE = "storage"
    DANGEROUS_GOODS = "dangerous_goods"
    PICKUP = "pickup"
    DELIVERY = "delivery"
    REDELIVERY = "redelivery"
    REBOOKING = "rebooking"
    DETENTION = "detention"
    LIFTGATE = "liftgate"
    RESIDENTIAL = "residential"
    INSIDE_DELIVERY = "inside_delivery"
    LAYOVER = "layover"
    LUMPER = "lumper"
    HAZMAT = "hazmat"


_CORE = (ChargeCode.LINEHAUL, ChargeCode.FUEL)
MODE_CHARGE_CODES = MappingProxyType({
    Mode.AIR: frozenset((*_CORE, ChargeCode.SECURITY, ChargeCode.SCREENING, ChargeCode.HANDLING,
                         ChargeCode.STORAGE, ChargeCode.DANGEROUS_GOODS, ChargeCode.PICKUP,
                         ChargeCode.DELIVERY, ChargeCode.REDELIVERY, ChargeCode.REBOOKING)),
    Mode.ROAD: frozenset((*_CORE, ChargeCode.DETENTION, ChargeCode.LIFTGATE, ChargeCode.RESIDENTIAL,
                          ChargeCode.INSIDE_DELIVERY, ChargeCode.REDELIVERY, ChargeCode.LAYOVER,
                          ChargeCode.LUMPER, ChargeCode.HAZMAT)),
})
"""Charge codes a carrier may put on an invoice, per mode."""


class ChargeBasis(StrEnum):
    """How an accessorial price turns into dollars (units are derived from the shipment facts)."""

    FLAT = "flat"              # once per shipment
    PER_KG = "per_kg"          # per kg of chargeable weight
    PER_DAY = "per_day"        # per started 24 h after the free time
    PER_HOUR = "per_hour"      # per started hour after the free time
    PER_ATTEMPT = "per_attempt"  # per delivery attempt after the first


TIME_BASES = frozenset({ChargeBasis.PER_DAY, ChargeBasis.PER_HOUR})


class FuelKind(StrEnum):
    """Fuel whose published price drives a mode's surcharge."""

    JET = "jet"
    DIESEL = "diesel"


MODE_FUEL_KIND = MappingProxyType({Mode.AIR: FuelKind.JET, Mode.ROAD: FuelKind.DIESEL})


class Currency(StrEnum):
    """Supported invoice currencies. Only USD: converting would need a dated FX table we do not keep."""

    USD = "USD"


class Discrepancy(StrEnum):
    """Audit verdict for one invoice (the label of the invoice-discrepancy model)."""

    CLEAN = "clean"
    RATE_OVERCHARGE = "rate_overcharge"
    FUEL_SURCHARGE_ERROR = "fuel_surcharge_error"
    UNBACKED_ACCESSORIAL = "unbacked_accessorial"
    WEIGHT_OVERBILLED = "weight_overbilled"
    DUPLICATE = "duplicate"
    BILLED_BEFORE_DELIVERY = "billed_before_delivery"


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class FuelSurchargeRule(BaseModel):
    """Banded fuel table: ``pct = max(0, floor((price - base_price) / step)) * pct_per_step``.

    The surcharge is that percentage of the linehaul. Bands (not a straight line) are what carriers
    publish, so a small price move inside a band changes nothing.
    """

    model_config = _FROZEN

    fuel_kind: FuelKind
    base_price: float = Field(gt=0, le=20, description="USD per gallon at which the surcharge is zero")
    step: float = Field(gt=0, le=5, description="USD per gallon per band")
    pct_per_step: float = Field(ge=0, le=10, description="percentage points of linehaul per band")


class AccessorialPrice(BaseModel):
    """Contract price of one accessorial: ``max(minimum, rate * units)`` when units > 0, else 0."""

    model_config = _FROZEN

    code: ChargeCode
    basis: ChargeBasis
    rate: float = Field(ge=0, le=100_000, description="USD per unit of the basis")
    minimum: float = Field(default=0.0, ge=0, le=100_000, description="USD, applied when billable")
    free_hours: float = Field(default=0.0, ge=0, le=24 * 30, description="free time before billing starts")

    @model_validator(mode="after")
    def _coherent(self) -> AccessorialPrice:
        if self.code in _CORE:
            raise ValueError(f"code: {self.code.value} is not an accessorial")
        if self.free_hours and self.basis not in TIME_BASES:
            raise ValueError("free_hours: only per_day and per_hour prices have free time")
        return self


class Contract(BaseModel):
    """Negotiated rates of one carrier on one lane, in force from ``effective_from`` to ``effective_to``.

    Both dates are inclusive. A mid-year amendment is a new contract row starting the day after the old
    one ends; an invoice is re-rated against the row in force on the *shipment* date.
    """

    model_config = _FROZEN

    contract_id: str = Field(pattern=ID_PATTERN)
    mode: Mode
    carrier: str = Field(pattern=CODE_PATTERN)
    origin: str = Field(pattern=CODE_PATTERN)
    destination: str = Field(pattern=CODE_PATTERN)
    effective_from: date
    effective_to: date
    base_rate: float = Field(gt=0, le=10_000, description="USD per kg (air) or per mile (road)")
    minimum_charge: float = Field(ge=0, le=100_000, description="USD floor of the linehaul")
    fuel: FuelSurchargeRule
    accessorials: tuple[AccessorialPrice, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> Contract:
        if self.effective_to < self.effective_from:
            raise ValueError("effective_to: must not be before effective_from")
        if self.fuel.fuel_kind != MODE_FUEL_KIND[self.mode]:
            raise ValueError(f"fuel_kind: {self.mode.value} contracts index {MODE_FUEL_KIND[self.mode].value}")
        codes = [price.code for price in self.accessorials]
        invalid = sorted(c.value for c in codes if c not in MODE_CHARGE_CODES[self.mode])
        if invalid:
            raise ValueError(f"accessorials: {invalid} not valid for mode {self.mode.value}")
        if len(set(codes)) != len(codes):
            raise ValueError("accessorials: each code may be priced once")
        return self


class ShipmentFacts(BaseModel):
    """What actually happened to a shipment: the evidence an invoice is checked against.

    ``actual_*`` describe the cargo's own movement (after a cancellation, the flight it was re-booked
    on). Dimensions are of one piece, all pieces alike. ``dwell_hours`` runs from actual arrival to the
    cargo's release (consignee pickup or final delivery); scans can be missing, so it may be None.
    """

    model_config = _FROZEN

    shipment_id: str = Field(min_length=1, max_length=64)
    mode: Mode
    carrier: str = Field(pattern=CODE_PATTERN)
    origin: str = Field(pattern=CODE_PATTERN)
    destination: str = Field(pattern=CODE_PATTERN)
    distance_miles: float = Field(ge=0, le=20_000)
    ship_date: date
    scheduled_departure: AwareDatetime
    scheduled_arrival: AwareDatetime
    actual_departure: AwareDatetime | None = None
    actual_arrival: AwareDatetime | None = None
    cancelled: bool = False
    proof_of_delivery_at: AwareDatetime | None = None
    pieces: int = Field(ge=1, le=10_000)
    actual_weight_kg: float = Field(gt=0, le=200_000)
    length_cm: float | None = Field(default=None, gt=0, le=2_000)
    width_cm: float | None = Field(default=None, gt=0, le=2_000)
    height_cm: float | None = Field(default=None, gt=0, le=2_000)
    consignee_pickup_at: AwareDatetime | None = None
    dwell_hours: float | None = Field(default=None, ge=0, le=24 * 365)
    dangerous_goods: bool = False
    delivery_attempts: int = Field(default=1, ge=0, le=20)
    requested_services: tuple[ChargeCode, ...] = ()

    @model_validator(mode="after")
    def _coherent(self) -> ShipmentFacts:
        if self.scheduled_arrival <= self.scheduled_departure:
            raise ValueError("scheduled_arrival: must be after scheduled_departure")
        dims = (self.length_cm, self.width_cm, self.height_cm)
        if any(d is None for d in dims) and any(d is not None for d in dims):
            raise ValueError("length_cm: give all three dimensions or none")
        invalid = [c.value for c in self.requested_services if c not in MODE_CHARGE_CODES[self.mode]]
        if invalid:
            raise ValueError(f"requested_services: {invalid} not valid for mode {self.mode.value}")
        return self

    @property
    def chargeable_weight_kg(self) -> float:
        """Air: max(actual, dimensional) rounded up to 0.5 kg; road: actual weight."""
        dims = [float("nan") if d is None else d for d in (self.length_cm, self.width_cm, self.height_cm)]
        return float(chargeable_weight_kg(self.mode, actual_kg=self.actual_weight_kg, pieces=self.pieces,
                                          length_cm=dims[0], width_cm=dims[1], height_cm=dims[2]))


class FuelIndexPoint(BaseModel):
    """Published average fuel price of one week (weeks start on Monday)."""

    model_config = _FROZEN

    week_start: date
    fuel_kind: FuelKind
    price_per_gallon: float = Field(gt=0, le=20)

    @model_validator(mode="after")
    def _monday(self) -> FuelIndexPoint:
        if self.week_start.weekday() != 0:
            raise ValueError("week_start: must be a Monday")
        return self


Money = Field(ge=0, le=10_000_000, max_digits=12, decimal_places=2)


class InvoiceLine(BaseModel):
    """One billed charge. Credits (negative amounts) are out of scope: they arrive as credit notes."""

    model_config = _FROZEN

    code: ChargeCode
    amount: Decimal = Money
    quantity: float | None = Field(default=None, ge=0, le=10_000_000)


class Invoice(BaseModel):
    """A carrier's invoice for (part of) one shipment, validated at the edge."""

    model_config = _FROZEN

    invoice_id: str = Field(pattern=INVOICE_ID_PATTERN)
    carrier: str = Field(pattern=CODE_PATTERN)
    shipment_id: str = Field(min_length=1, max_length=64)
    mode: Mode = Mode.AIR
    invoice_date: date
    received_at: AwareDatetime | None = None
    currency: Currency
    lines: tuple[InvoiceLine, ...] = Field(min_length=1, max_length=100)
    total: Decimal = Money
    billed_weight_kg: float | None = Field(default=None, gt=0, le=200_000)

    @model_validator(mode="after")
    def _coherent(self) -> Invoice:
        invalid = [line.code.value for line in self.lines if line.code not in MODE_CHARGE_CODES[self.mode]]
        if invalid:
            raise ValueError(f"lines: {invalid} not valid for mode {self.mode.value}")
        line_sum = sum((line.amount for line in self.lines), Decimal("0"))
        if abs(line_sum - self.total) > CENT_TOLERANCE:
            raise ValueError(f"total: lines sum to {line_sum}, invoice {self.invoice_id} states {self.total}")
        return self


__all__ = ["AIR_WEIGHT_INCREMENT_KG", "AccessorialPrice", "ChargeBasis", "ChargeCode", "Contract",
           "Currency", "Discrepancy", "FuelIndexPoint", "FuelKind", "FuelSurchargeRule",
           "IATA_DIM_DIVISOR_CM3_PER_KG", "Invoice", "InvoiceLine", "MODE_CHARGE_CODES", "MODE_FUEL_KIND",
           "ShipmentFacts", "TIME_BASES"]
