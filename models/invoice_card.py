"""Model card of the invoice-discrepancy model: use, data, training, held-out evidence, limits."""

from __future__ import annotations

import math
from collections.abc import Mapping

HEADLINE = ("macro_f1", "rules_only_macro_f1", "clean_precision", "duplicate_recall",
            "split_invoice_false_duplicate_rate", "amount_at_risk_mae", "ece_clean", "true_macro_f1",
            "true_rules_only_macro_f1", "true_clean_precision", "true_duplicate_recall",
            "true_split_invoice_false_duplicate_rate", "true_amount_at_risk_mae", "ceiling_macro_f1",
            "ceiling_clean_precision", "ceiling_duplicate_recall")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _table(rows: Mapping[str, object]) -> str:
    return "\n".join(["| item | value |", "| --- | --- |", *(f"| {k} | {_cell(v)} |" for k, v in rows.items())])


def invoice_model_card(*, model_name: str, feature_service: str, features: list[str], classes: tuple[str, ...],
                       params: Mapping[str, object], metrics: Mapping[str, float],
                       data: Mapping[str, object]) -> str:
    """Markdown model card for an invoice-discrepancy model version."""
    headline = {k: metrics[k] for k in HEADLINE if k in metrics}
    per_class = {k: v for k, v in metrics.items() if k.startswith(("precision_", "recall_"))}
    return f"""# Model card: {model_name}

## Intended use
For a carrier invoice as received: the probability of each audit verdict ({", ".join(classes)}), the
most probable one, the dollars at risk (expected recoverable overbilling) and the features that drove
the verdict. Tollgate's invoice policy turns these into approve / hold / dispute / review. The model
never approves anything by itself, and is not a judgement of a carrier's honesty.

## Data
{_table(data)}

{len(features)} audit features from re-rating each invoice against the contract in force on the
shipment date, the fuel index of the shipment week and the shipment facts, plus look-back features
over strictly earlier invoices (duplicates, carrier track record). Reference data is served by the
Feast FeatureService `{feature_service}`.

## Training
LightGBM multiclass trees on the training months (clean invoices subsampled, weighted back);
probabilities calibrated per class by isotonic regression on time-ordered out-of-fold predictions,
then renormalised. Amount at risk = sum over classes of P(class) x the dollars that class would put at
risk according to the re-rating deltas (the whole total for duplicates and premature invoices).

{_table(params)}

## Held-out metrics (later months, never seen in fitting or calibration)
Unprefixed: against the recorded verdicts (1.5 % of them wrong), what a real team measures.
`true_`: against the generator's ground truth. `ceiling_`: the truth scored against the recorded
verdicts, i.e. the best any model can show on the recorded yardstick.

{_table(headline)}

### Per class (recorded verdicts)
{_table(per_class)}

## Limitations
- Trained on a synthetic air-cargo world over real 2013 New York flights: carriers' real billing
  habits, other modes (road) and other years are not represented; retrain on your own invoices.
- Duplicates re-billed under a neighbouring shipment's reference as a separate small accessorial bill
  look like an unbacked accessorial to the features available; some are classed as such.
- Spot lanes are re-rated against rates estimated from earlier invoices; until three are known the
  rate checks are missing and the model leans on other evidence.
- Calibrated against recorded verdicts: probabilities inherit the reviewers' ~1.5 % error rate.
"""
