"""MLflow pyfunc flavour of the invoice model: class probabilities and dollars at risk, not a label.

(A bare LightGBM classifier logged with MLflow's pyfunc returns labels; policies need ``p_clean``,
``predicted_class``, ``p_predicted`` and ``amount_at_risk``.) Serving unwraps the Python object with
``unwrap_python_model()`` to reach ``explain``.
"""

from __future__ import annotations

import mlflow.pyfunc
import pandas as pd


class InvoiceDiscrepancyPyfunc(mlflow.pyfunc.PythonModel):
    """Wraps a fitted :class:`models.invoice.InvoiceDiscrepancyModel`."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None):  # noqa: ARG002 - MLflow API
        return self.model.score(model_input).reset_index(drop=True)
