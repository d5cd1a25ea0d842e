"""How new data is counted against a profile: values as numbers or as category text, counts
per bin and per category, and tallies of a column that add up partition by partition."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tasks.data.features import NUMERIC

NEW_SAMPLE = 20_000  # values of new data per number the two-sample test looks at
_WHOLE = re.compile(r"^(-?\d+)\.0+$")


def numbers(column: pd.Series) -> pd.Series:
    """A column's values as floats; a cell that holds no number is missing."""
    return pd.to_numeric(column, errors="coerce").astype("float64")


def category_text(text: str) -> str:
    """A category's text, the same for 1, 1.0 and "1" and for True and "true"."""
    whole = _WHOLE.match(text)
    if whole:
        return whole.group(1)
    return text.capitalize() if text.lower() in ("true", "false") else text


def category_counts(column: pd.Series) -> pd.Series:
    """How often each present value occurs, by its text."""
    return by_category(column.astype("string").value_counts())


def by_category(counts: pd.Series) -> pd.Series:
    """Counts by category text (see category_text), those of one text added up."""
    return counts.groupby(counts.index.map(category_text)).sum()


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """The values in each bin: below the first edge, between each two (an edge belongs to the
    bin above it), from the last one up. Counted as values below each edge, which is much
    cheaper than a bin index per value (searchsorted)."""
    below = [np.count_nonzero(values < edge) for edge in edges]
    return np.diff([0, *below, values.size])


@dataclass(frozen=True)
class ColumnTally:
    """What a drift check needs of one column of new data, and all it keeps of it: its cells,
    the missing ones, its present values' counts per profile bin (a number) or per category;
    for a number also a uniform sample of up to NEW_SAMPLE values (the KS test's), with the
    random key each was drawn by. Tallies of parts add up to the tally of the whole."""

    rows: int
    missing: int
    counts: pd.Series
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __add__(self, other: ColumnTally) -> ColumnTally:
        sample, keys = _smallest_keys(
            np.concatenate([self.sample, other.sample]), np.concatenate([self.keys, other.keys])
        )
        counts = self.counts.add(other.counts, fill_value=0)
        return ColumnTally(
            self.rows + other.rows, self.missing + other.missing, counts, sample, keys
        )


def _smallest_keys(values: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values of the NEW_SAMPLE smallest keys: with keys drawn uniformly, a uniform sample
    without replacement, whether drawn from the whole or from samples of its parts (bottom-k)."""
    if keys.size <= NEW_SAMPLE:
        return values, keys
    kept = np.argpartition(keys, NEW_SAMPLE)[:NEW_SAMPLE]
    return values[kept], keys[kept]


def tally(profile: dict, frame: pd.DataFrame, rng: np.random.Generator) -> dict[str, ColumnTally]:
    """Each profiled column of the frame, tallied against the profile's bins; columns absent
    from the frame are left out (the suite answers for schema changes)."""
    keys = rng.random(len(frame))
    columns = {}
    for name, spec in profile["columns"].items():
        if name not in frame.columns:
            continue
        if spec["kind"] == NUMERIC:
            floats = numbers(frame[name]).to_numpy()
            present = ~np.isnan(floats)
            values = floats[present]
            counts = pd.Series(bin_counts(values, spec["edges"]), dtype="float64")
            sample, drawn = _smallest_keys(values, keys[present])
            columns[name] = ColumnTally(len(frame), int((~present).sum()), counts, sample, drawn)
        else:
            missing = int(frame[name].isna().sum())
            columns[name] = ColumnTally(len(frame), missing, category_counts(frame[name]))
    return columns
