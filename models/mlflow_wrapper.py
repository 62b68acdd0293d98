"""MLflow pyfunc flavour of the delay model: returns calibrated probabilities, not class labels.

(A bare LightGBM classifier logged with MLflow's pyfunc returns labels; auditors and the peer benchmark
need the probability.) Serving unwraps the Python object with ``unwrap_python_model()``.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd


class DelayRiskPyfunc(mlflow.pyfunc.PythonModel):
    """Wraps a fitted :class:`models.delay.DelayRiskModel`."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ARG002 - MLflow API
        return pd.Series(self.model.predict_proba(model_input), name="p_late")
