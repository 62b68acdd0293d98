"""What a reviewer can say about a case: verdicts, reason codes, and what a verdict means downstream.

Pure (no I/O): the verdict schema validated at the edge, the label a final verdict becomes for training
(``training/invoice_feedback.py`` format), and the invoice-hold consequence recorded when a case is final.
The reason codes are a fixed list documented in docs/review-workflow.md.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.errors import InvalidInput
from features.reference import Discrepancy


class VerdictKind(StrEnum):
    APPROVE_AS_BILLED = "approve_as_billed"
    APPROVE_ADJUSTED = "approve_adjusted"
    DISPUTE = "dispute"
    CONFIRM_CLASS = "confirm_class"


VERDICTS: tuple[str, ...] = tuple(v.value for v in VerdictKind)

REASON_CODES: dict[str, str] = {
    "verified_correct": "Checked against the contract and the evidence: the charges are correct",
    "rate_not_per_contract": "The linehaul rate billed is not the contracted rate",
    "fuel_surcharge_wrong": "The fuel surcharge does not follow the published fuel index",
    "accessorial_not_supported": "An accessorial charge has no service event behind it",
    "weight_overstated": "The billed weight is above the actual or dimensional weight",
    "duplicate_invoice": "The charges were already billed on another invoice",
    "billed_before_delivery": "Billed before proof of delivery",
    "service_failure": "Late, damaged or incomplete service entitles a credit",
    "missing_documentation": "Supporting documents (proof of delivery, weight ticket) are missing",
    "other": "Something else: explained in the note",
}
ReasonCode = StrEnum("ReasonCode", {code: code for code in REASON_CODES})

# The discrepancy a reason code stands for, used when the reviewer names no class explicitly.
REASON_CLASS: dict[str, str] = {
    "verified_correct": Discrepancy.CLEAN.value,
    "rate_not_per_contract": Discrepancy.RATE_OVERCHARGE.value,
    "fuel_surcharge_wrong": Discrepancy.FUEL_SURCHARGE_ERROR.value,
    "accessorial_not_supported": Discrepancy.UNBACKED_ACCESSORIAL.value,
    "weight_overstated": Discrepancy.WEIGHT_OVERBILLED.value,
    "duplicate_invoice": Discrepancy.DUPLICATE.value,
    "billed_before_delivery": Discrepancy.BILLED_BEFORE_DELIVERY.value,
}
NOTE_MAX = 1000
INVOICE_ONLY = (VerdictKind.APPROVE_ADJUSTED, VerdictKind.CONFIRM_CLASS)


class Verdict(BaseModel):
    """A reviewer's verdict on one case (the body of ``POST /v1/reviews/{case_id}/resolve``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    verdict: VerdictKind
    amount: float | None = Field(default=None, ge=0, le=100_000_000,
                                 description="approve_adjusted: the amount to pay; dispute: the amount disputed")
    reason_code: ReasonCode | None = Field(default=None, description="one of REASON_CODES")
    discrepancy: Discrepancy | None = Field(default=None, description="the discrepancy class, if stated")
    note: str | None = Field(default=None, max_length=NOTE_MAX)

    @model_validator(mode="after")
    def _complete(self) -> Verdict:
        kind = self.verdict
        if kind in (VerdictKind.APPROVE_ADJUSTED, VerdictKind.DISPUTE) and self.amount is None:
            raise ValueError(f"amount: required for {kind.value}")
        if kind == VerdictKind.DISPUTE and not self.amount:
            raise ValueError("amount: a dispute is for more than 0")
        if kind in (VerdictKind.APPROVE_ADJUSTED, VerdictKind.DISPUTE) and self.reason_code is None:
            raise ValueError(f"reason_code: required for {kind.value}")
        if kind == VerdictKind.APPROVE_AS_BILLED and self.amount is not None:
            raise ValueError("amount: approve_as_billed pays the billed total; use approve_adjusted for another amount")
        if kind == VerdictKind.CONFIRM_CLASS and self.discrepancy is None:
            raise ValueError("discrepancy: required for confirm_class")
        if self.reason_code == "other" and not (self.note and self.note.strip()):
            raise ValueError("note: required when reason_code is 'other'")
        return self


def parse_verdict(verdict: dict | Verdict) -> Verdict:
    """A validated verdict; a bad one raises InvalidInput naming the field."""
    if isinstance(verdict, Verdict):
        return verdict
    from pydantic import ValidationError

    try:
        return Verdict.model_validate(verdict)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or str(first["msg"]).split(":")[0].removeprefix(
            "Value error, ")
        raise InvalidInput(f"invalid verdict: {field}: {first['msg']}", field=field) from exc


def verdict_class(verdict: Verdict, *, predicted: str | None) -> str | None:
    """The discrepancy class a verdict asserts: stated > implied by the reason code > the model's."""
    if verdict.verdict == VerdictKind.APPROVE_AS_BILLED:
        return Discrepancy.CLEAN.value
    if verdict.discrepancy is not None:
        return verdict.discrepancy.value
    implied = REASON_CLASS.get(verdict.reason_code.value) if verdict.reason_code else None
    if implied and implied != Discrepancy.CLEAN.value:
        return implied
    return predicted if predicted and predicted != Discrepancy.CLEAN.value else None


def check_against_case(verdict: Verdict, *, kind: str, billed: float | None, predicted: str | None) -> None:
    """Refuse a verdict that cannot apply to this case (InvalidInput naming the field)."""
    if kind != "invoice" and verdict.verdict in INVOICE_ONLY:
        raise InvalidInput(f"verdict: {verdict.verdict.value} applies to invoice cases only", field="verdict")
    if billed is not None and verdict.amount is not None and verdict.amount > billed + 0.005:
        raise InvalidInput(f"amount: {verdict.amount} is more than the billed total {billed}", field="amount")
    if (kind == "invoice" and verdict.verdict in (VerdictKind.APPROVE_ADJUSTED, VerdictKind.DISPUTE)
            and verdict_class(verdict, predicted=predicted) is None):
        raise InvalidInput("discrepancy: the model found no discrepancy; name the class (or a reason code "
                           "that implies one)", field="discrepancy")


def label_of(verdict: Verdict, *, predicted: str | None, billed: float | None) -> tuple[str | None, float | None]:
    """``(discrepancy, overbilled_amount)`` a final verdict becomes as a training label.

    approve_as_billed → clean, 0; approve_adjusted → its class, billed − adjusted; dispute → its class,
    the disputed amount; confirm_class → that class, the amount if given (0 for clean, else unknown).
    """
    cls = verdict_class(verdict, predicted=predicted)
    kind = verdict.verdict
    if kind == VerdictKind.APPROVE_AS_BILLED:
        return cls, 0.0
    if kind == VerdictKind.APPROVE_ADJUSTED:
        return cls, (round(max(billed - verdict.amount, 0.0), 2) if billed is not None else None)
    if kind == VerdictKind.DISPUTE:
        return cls, verdict.amount
    if cls == Discrepancy.CLEAN.value:
        return cls, 0.0
    return cls, verdict.amount


def hold_effect(verdict: Verdict, *, kind: str, billed: float | None, held: bool) -> tuple[str, dict] | None:
    """The event a final verdict puts on the case about the invoice hold: (action, payload), or None.

    Paying (as billed or adjusted) releases the hold; a dispute keeps it and opens a dispute with the
    carrier; a confirmed discrepancy keeps it (clean releases it). A shipment case without a hold has no
    invoice consequence.
    """
    if kind != "invoice" and not held:
        return None
    base = {"held_by_decision": held}
    if verdict.verdict == VerdictKind.APPROVE_AS_BILLED:
        return "hold_released", {**base, "payable_amount": billed}
    if verdict.verdict == VerdictKind.APPROVE_ADJUSTED:
        short = round(billed - verdict.amount, 2) if billed is not None else None
        return "hold_released", {**base, "payable_amount": verdict.amount, "short_paid": short}
    if verdict.verdict == VerdictKind.DISPUTE:
        return "dispute_opened", {**base, "disputed_amount": verdict.amount,
                                  "reason_code": verdict.reason_code.value, "hold": "kept until the dispute ends"}
    if verdict.discrepancy == Discrepancy.CLEAN:
        return "hold_released", {**base, "payable_amount": billed}
    return "hold_kept", {**base, "discrepancy": verdict.discrepancy.value}


__all__ = ["REASON_CLASS", "REASON_CODES", "VERDICTS", "Verdict", "VerdictKind", "check_against_case",
           "hold_effect", "label_of", "parse_verdict", "verdict_class"]
