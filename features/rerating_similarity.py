"""Invoice-number similarity: a normalised Levenshtein distance computed for many pairs at once.

Re-keyed duplicates differ from the original number by a dash, a space, a dropped leading zero or two
swapped digits. After removing case and punctuation, similarity is ``1 - distance / longer length``.
No edit-distance package is in the dependency tree, so the dynamic programme runs column by column over
all pairs with numpy (numbers are short, so it is a few hundred array operations in all).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_MAX_LENGTH = 40


def normalize_number(numbers: pd.Series) -> pd.Series:
    """Upper-case letters and digits only: ``ua-0412345`` and ``UA 0412345`` become ``UA0412345``."""
    text = numbers.astype(object).where(numbers.notna(), None)
    return text.str.upper().str.replace(r"[^A-Z0-9]", "", regex=True)


def _codes(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    filled = text.fillna("").str.slice(0, _MAX_LENGTH)
    lengths = filled.str.len().to_numpy(int)
    width = max(int(lengths.max(initial=0)), 1)
    padded = filled.str.pad(width, side="right", fillchar="\0").to_numpy(dtype=f"U{width}")
    return padded.view(np.uint32).reshape(len(filled), width), lengths


def number_similarity(left: pd.Series, right: pd.Series) -> np.ndarray:
    """Pairwise similarity in [0, 1] of two aligned series of invoice numbers; NaN where one is missing."""
    a_raw, b_raw = pd.Series(left).reset_index(drop=True), pd.Series(right).reset_index(drop=True)
    out = np.full(len(a_raw), np.nan)
    both = (a_raw.notna() & b_raw.notna()).to_numpy()
    if both.any():
        out[both] = _similarity(normalize_number(a_raw[both]), normalize_number(b_raw[both]))
    return out


def _similarity(a_text: pd.Series, b_text: pd.Series) -> np.ndarray:
    a, a_len = _codes(a_text)
    b, b_len = _codes(b_text)
    n = len(a)
    previous = np.tile(np.arange(b.shape[1] + 1), (n, 1))
    final = previous.copy()  # the DP row i == len(a) of each pair, kept when reached
    for i in range(1, a.shape[1] + 1):
        current = np.empty_like(previous)
        current[:, 0] = i
        for j in range(1, b.shape[1] + 1):
            cost = (a[:, i - 1] != b[:, j - 1]).astype(int)
            current[:, j] = np.minimum(np.minimum(previous[:, j] + 1, current[:, j - 1] + 1),
                                       previous[:, j - 1] + cost)
        final[a_len == i] = current[a_len == i]
        previous = current
    distance = final[np.arange(n), b_len]
    return 1.0 - distance / np.maximum(np.maximum(a_len, b_len), 1)


__all__ = ["normalize_number", "number_similarity"]
