"""The split-routed sessions of a frame grouped into periods (see `analysis.periods`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from analysis.periods import Period, parse_weights, pooled_weights
from analysis.spec import PeriodMode


def split_periods(rows: pd.DataFrame, mode: PeriodMode) -> list[tuple[Period, NDArray[np.bool_]]]:
    """The periods of the split-routed `rows`, each with its row mask, oldest first."""
    if rows.empty:
        return []
    keys = [col.SPLIT_ID] if mode is PeriodMode.POOLED else [col.SPLIT_ID, col.SPLIT_WEIGHTS]
    if mode is not PeriodMode.POOLED and col.FLAG_VERSION in rows:
        keys.append(col.FLAG_VERSION)
    group = rows.groupby(keys, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    firsts = rows[col.TS].groupby(group).min()
    order = firsts.sort_values(kind="stable").index.to_numpy()
    periods = [_period(rows, group == g, str(i + 1)) for i, g in enumerate(order)]
    return periods[-1:] if mode is PeriodMode.LATEST else periods


def _period(
    rows: pd.DataFrame, mask: NDArray[np.bool_], label: str
) -> tuple[Period, NDArray[np.bool_]]:
    part = rows[mask]
    configs = part.groupby(
        [part[col.SPLIT_WEIGHTS].astype(object), _versions(part)], sort=False, observed=True
    ).size()
    weights = pooled_weights([(parse_weights(w), int(n)) for (w, _), n in configs.items()])
    ts = part[col.TS]
    unit = part[col.BUCKET_UNIT].iloc[0] if col.BUCKET_UNIT in part else None
    period = Period(
        label=label,
        split_id=str(part[col.SPLIT_ID].iloc[0]),
        weights=weights,
        flag_versions=tuple(sorted({str(v) for _, v in configs.index})),
        bucket_unit=str(unit) if isinstance(unit, str) else "targetingKey",
        start=ts.min().isoformat(),
        end=ts.max().isoformat(),
        sessions=int(mask.sum()),
        configurations=len(configs),
    )
    return period, mask


def _versions(part: pd.DataFrame) -> pd.Series:
    if col.FLAG_VERSION in part:
        return part[col.FLAG_VERSION].astype(object).fillna("")
    return pd.Series("", index=part.index)
