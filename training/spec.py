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


def load_job_spec(model: type[BaseModel], name_or_path: str | Path):
    """Load and validate a job spec (a YAML path or a name in ``training/configs/``); errors name the field."""
    path = Path(name_or_path)
    if not path.exists():
        candidate = CONFIG_DIR / f"{name_or_path}.yaml"
        if not candidate.exists():
            raise InvalidInput(f"job spec {name_or_path} not found (looked in {CONFIG_DIR})", field="config")
        path = candidate
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"job spec {path.name}: not valid YAML ({exc})", field="config") from exc
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "spec"
        raise InvalidInput(f"job spec {path.name}: field '{field}': {first['msg']}", field=field) from exc


def load_spec(name_or_path: str | Path) -> DelayJobSpec:
    """The delay job spec named (or at the path) given."""
    return load_job_spec(DelayJobSpec, name_or_path)
