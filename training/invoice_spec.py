"""The invoice-discrepancy job spec: a frozen pydantic document loaded from ``training/configs/``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.errors import InvalidInput
from models.invoice import InvoiceModelParams
from training.spec import load_job_spec

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class WorldSpec(BaseModel):
    """Where the invoices come from: the seeded embedded world, or a world saved with ``save_world``."""

    model_config = _FROZEN

    seed: int = 13
    sample: int | None = Field(default=None, ge=100, description="shipments to invoice; default 22 % of flights")
    directory: Path | None = Field(default=None, description="load this saved world instead of generating")
    suffix: Literal[".parquet", ".csv"] = ".parquet"


class InvoiceGateSpec(BaseModel):
    """How much worse than the champion a challenger may be on each held-out metric and be promoted."""

    model_config = _FROZEN

    macro_f1: float = Field(default=0.0, ge=0)
    clean_precision: float = Field(default=0.0, ge=0)
    duplicate_recall: float = Field(default=0.0, ge=0)
    amount_at_risk_mae: float = Field(default=0.0, ge=0)


class InvoiceJobSpec(BaseModel):
    """Everything that determines an invoice-model training run (with the data and the code version).

    Invoices are split by receipt (``received_at``, UTC): received before ``test_start`` they train and
    calibrate the model; received in ``[test_start, test_end)`` they are only ever scored.
    """

    model_config = _FROZEN

    job: str = "train_invoice"
    model_name: str = "invoice_discrepancy"
    experiment: str = "invoice_discrepancy"
    feature_service: str = "invoice_reference_v1"
    seed: int = 13
    world: WorldSpec = WorldSpec()
    train_start: date = date(2013, 1, 1)
    test_start: date = date(2013, 10, 1)
    test_end: date = date(2014, 3, 1)
    params: dict[str, float | int] = Field(default_factory=dict)
    gate: InvoiceGateSpec = InvoiceGateSpec()

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, float | int]) -> dict[str, float | int]:
        known = set(InvoiceModelParams.__dataclass_fields__) - {"seed", "extra"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown model parameter(s) {unknown}; known: {sorted(known)}")
        return params

    @model_validator(mode="after")
    def _ordered(self) -> InvoiceJobSpec:
        if not self.train_start < self.test_start < self.test_end:
            raise ValueError("need train_start < test_start < test_end")
        return self


def load_invoice_spec(name_or_path: str | Path) -> InvoiceJobSpec:
    """The invoice job spec named (or at the path) given; errors name the field."""
    return load_job_spec(InvoiceJobSpec, name_or_path)
