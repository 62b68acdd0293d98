"""Model cards: what a model is for, what it saw, how well it did on held-out data, and its limits."""

from __future__ import annotations

from collections.abc import Mapping


def _table(rows: Mapping[str, object]) -> str:
    lines = ["| item | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in rows.items()]
    return "\n".join(lines)


def delay_model_card(*, model_name: str, feature_service: str, features: list[str],
                     params: Mapping[str, object], metrics: Mapping[str, float],
                     data: Mapping[str, object]) -> str:
    """Markdown model card for a delay-risk model version."""
    return f"""# Model card: {model_name}

## Intended use
Probability that a shipment arrives more than 15 minutes late (or is cancelled), scored at dispatch,
two hours before scheduled departure. Used by Tollgate's delay policy to notify customers, suggest
less risky carriers on the same lane and hold invoices until delivery is certain. Not for pricing or
for judging individual crews.

## Data
{_table(data)}

Features come from the Feast FeatureService `{feature_service}` through a point-in-time join at each
shipment's decision time ({len(features)} columns): {", ".join(features)}.

## Training
LightGBM gradient-boosted trees; probabilities calibrated by isotonic regression fitted on time-ordered
out-of-fold scores (each block scored by trees fitted only on earlier blocks).

{_table(params)}

## Held-out metrics (test period never seen in fitting or calibration)
{_table(metrics)}

## Limitations
- Trained on 2013 New York departures: seasonality and carriers of other years or regions differ.
- Live congestion features depend on orchestrators pushing departure events; without them the online
  values go stale and the model sees missing values (it was trained with missing values present).
- Weather is the latest observation at decision time, not a forecast for the departure hour.
"""
