"""Training job specs: frozen pydantic documents loaded from YAML under ``training/configs/``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.errors import InvalidInput

CONFIG_DIR = Path(__file__).parent / "configs"


class GateSpec(BaseModel):
    """How much worse than the champion a challenger may be on each test metric and still be promoted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test_auc: float = Field(default=0.0, ge=0)
    test_pr_auc: float = Field(default=0.0, ge=0)
    ece: float = Field(default=0.0, ge=0)
    brier: float = Field(default=0.0, ge=0)


class DelayJobSpec(BaseModel):
    """Everything that determines a delay-risk training run (with the data and the code version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: str = "train_delay"
    model_name: str = "delay_risk"
    experiment: str = "delay_risk"
    feature_service: str = "delay_risk_v1"
    seed: int = 13
    train_start: date = date(2013, 1, 1)
    test_start: date = date(2013, 11, 1)
    test_end: date = date(2014, 1, 1)
    timezone: str = "America/New_York"
    origins: list[str] | None = Field(default=None, description="restrict history (smoke runs)")
    params: dict[str, float | int] = Field(default_factory=dict)
    gate: GateSpec = GateSpec()

    @model_validator(mode="after")
    def _ordered(self) -> DelayJobSpec:
        if not self.train_start < self.test_start < self.test_end:
            raise ValueError("need train_start < test_start < test_end")
        return self


def load_spec(path: str | Path) -> DelayJobSpec:
    """Load and validate a job spec; a bad document names the offending field."""
    path = Path(path)
    if not path.exists():
        candidate = CONFIG_DIR / f"{path}.yaml"
        if not candidate.exists():
            raise InvalidInput(f"job spec {path} not found (looked in {CONFIG_DIR})", field="config")
        path = candidate
    try:
        return DelayJobSpec.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "spec"
        raise InvalidInput(f"job spec {path.name}: field '{field}': {first['msg']}", field=field) from exc
