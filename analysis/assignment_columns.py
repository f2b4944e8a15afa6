"""The assignment stream's pages -> the columns of the sessions frame (`load_sessions`).

`AssignmentColumns` keeps, page by page, each session's fields and its
flag's assignment (cohort, reason, split, weights, bucketing unit, flag
version, fallback) as strings, ints and None, and the context each session
gave (feature switches, attributes); `frame()` then builds the frame's
columns from arrays, factorised once into categoricals, with the `routing`
of each session (see `analysis.columns.Routing`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import orjson
import pandas as pd
from numpy.typing import NDArray

from analysis import columns as col
from experiments.eventlog import AssignmentPage
from experiments.events import Assignment

SPLIT_REASON = "SPLIT"
FALLBACK_REASONS = frozenset({"ERROR", "DISABLED"})

_EVENT_FIELDS = ("session_id", "tenant_id", "region", "ts_ms")
_ASSIGNMENT_FIELDS = (
    "variant", "reason", "error_code", "split_id", "bucket_unit", "bucket_key", "flag_version",
    "fallback",
)  # fmt: skip
_COLUMNS = (*_EVENT_FIELDS, *_ASSIGNMENT_FIELDS, "weights")
_CATEGORICAL = (
    "tenant_id", "region", "variant", "reason", "error_code", "split_id", "bucket_unit",
    "flag_version", "fallback",
)  # fmt: skip
_ROUTINGS = pd.Index([r.value for r in col.Routing], dtype="str")
_SPLIT, _STATIC, _FALLBACK, _PRE_PERIOD = range(4)
_WEIGHTS = attrgetter("split_weights")


class AssignmentColumns:
    """Columns of the assignment stream, built batch by batch.

    Only strings, ints and None are kept between batches (objects the cyclic
    GC does not track), so that collections stay cheap at a million sessions.
    """

    def __init__(self, flag_key: str) -> None:
        self.flag_key = flag_key
        self.absent = Assignment(flag_key, "", None, None, "", None, None, None, None, None)
        self.columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
        self.seen: dict[str, dict[Any, Any]] = {name: {} for name in _CATEGORICAL}
        self.weight_codes = _Numbering({None: -1})
        self.duplicates = 0
        self.rows = 0
        self.features = _Sparse()
        self.attributes = _Sparse()
        self._keep: NDArray[np.bool_] | None = None

    def add(self, page: AssignmentPage) -> None:
        absent = self.absent
        picked = [absent if a is None else a for a in page.assignments_of(self.flag_key)]
        self.features.add(self.rows, page.features)
        self.attributes.add(self.rows, page.attributes)
        self.rows += len(page)
        self.columns["session_id"].extend(page.session_ids)
        self._add_categorical("tenant_id", page.tenant_ids)
        self._add_categorical("region", page.regions)
        self.columns["ts_ms"].extend(page.ts_ms)
        for name in _ASSIGNMENT_FIELDS:
            if name in _CATEGORICAL:
                self._add_categorical(name, map(attrgetter(name), picked))
            else:
                self.columns[name].extend(map(attrgetter(name), picked))
        self.columns["weights"].extend(map(self.weight_codes.__getitem__, map(_WEIGHTS, picked)))

    def _add_categorical(self, name: str, values: Iterable[Any]) -> None:
        """Keep one object per distinct value: every page decodes its own copies of
        the same few strings (the peak memory of `bench/bench_analysis.py`; figures
        in the README)."""
        items = values if isinstance(values, list) else list(values)
        self.columns[name].extend(map(self.seen[name].setdefault, items, items))

    def frame(self) -> tuple[pd.DataFrame, pd.Timestamp | None]:
        """The sessions of the flag (and of the pre-period) and the experiment start."""
        c = {name: _objects(values) for name, values in self.columns.items()}
        self.columns = {}
        ts = c["ts_ms"].astype(np.int64)
        codes = {name: _Codes(c[name]) for name in _CATEGORICAL}
        routing, start_ms = _routing(codes, ts)
        keep = ~pd.Index(c["session_id"]).duplicated(keep="first")
        self.duplicates = int(keep.size - np.count_nonzero(keep))
        present = codes["reason"].where(lambda reason: reason != "")
        keep &= present | (routing == _PRE_PERIOD)
        unit_ids = _unit_ids(c, codes["bucket_unit"])[keep]
        self._keep = keep
        frame = pd.DataFrame(
            {
                col.SESSION_ID: pd.Series(c["session_id"][keep], dtype="str"),
                col.TENANT_ID: codes["tenant_id"].categorical(keep),
                col.REGION: codes["region"].categorical(keep),
                col.TS: pd.Series(ts[keep].astype("datetime64[ms]")).dt.tz_localize("UTC"),
                col.COHORT: codes["variant"].categorical(keep),
                col.REASON: codes["reason"].categorical(keep),
                col.SPLIT_ID: codes["split_id"].categorical(keep),
                col.SPLIT_WEIGHTS: self._weights(c["weights"][keep]),
                col.BUCKET_UNIT: codes["bucket_unit"].categorical(keep),
                col.UNIT_ID: pd.Series(unit_ids, dtype="str"),
                col.FLAG_VERSION: codes["flag_version"].categorical(keep),
                col.ROUTED_BY_SPLIT: routing[keep] == _SPLIT,
                col.ROUTING: pd.Categorical.from_codes(routing[keep], categories=_ROUTINGS),
                col.FALLBACK: codes["fallback"].categorical(keep),
            }
        )
        start = None if start_ms is None else pd.Timestamp(start_ms, unit="ms", tz="UTC")
        return frame, start

    def context_frame(self, index: pd.Index) -> pd.DataFrame:
        """The `feature.<name>` and `attr.<name>` columns of the rows `frame` kept
        (nullable booleans; categoricals of text), in name order."""
        keep = self._keep if self._keep is not None else np.ones(self.rows, dtype=bool)
        columns: dict[str, Any] = {}
        for name, (rows, values) in sorted(self.features.items()):
            flags = np.full(self.rows, -1, dtype=np.int8)
            flags[rows] = np.fromiter(values, dtype=np.int8, count=len(values))
            kept = flags[keep]
            columns[col.feature_column(name)] = pd.arrays.BooleanArray(kept == 1, kept < 0)
        for name, (rows, values) in sorted(self.attributes.items()):
            texts = np.full(self.rows, None, dtype=object)
            texts[rows] = [v if v.__class__ is str else _text(v) for v in values]
            columns[col.attribute_column(name)] = _Codes(texts).categorical(keep)
        self.features = _Sparse()
        self.attributes = _Sparse()
        return pd.DataFrame(columns, index=index)

    def _weights(self, codes: NDArray[Any]) -> pd.Categorical:
        """Canonical weight strings as a categorical over the codes given per batch."""
        labels = [weights_text(w) for w in self.weight_codes if w is not None]
        return pd.Categorical.from_codes(
            codes.astype(np.int32), categories=pd.Index(labels, dtype="str")
        )


class _Numbering(dict[Any, int]):
    """Numbers keys in order of first sight (-1 reserved); lookups stay in C for known keys."""

    def __missing__(self, key: Any) -> int:
        self[key] = number = len(self) - 1
        return number


class _Sparse(dict[str, tuple[list[int], list[Any]]]):
    """Per context name, the rows that gave it and their values (only those rows)."""

    def add(self, first_row: int, mappings: Iterable[Mapping[str, Any]]) -> None:
        for row, mapping in enumerate(mappings, first_row):
            if mapping:
                for name, value in mapping.items():
                    entry = self.get(name)
                    if entry is None:
                        self[name] = entry = ([], [])
                    entry[0].append(row)
                    entry[1].append(value)


def _text(value: Any) -> str:
    """A non-string attribute value as its JSON text (`true`, `12`, `2.5`), so that
    `True` and `1` stay apart and every level is a string."""
    return orjson.dumps(value).decode()


def _objects(values: Sequence[Any]) -> NDArray[Any]:
    return np.fromiter(values, dtype=object, count=len(values))


class _Codes:
    """A column factorised once: codes (-1 for None) and its distinct values."""

    def __init__(self, values: NDArray[Any]) -> None:
        self.codes, uniques = pd.factorize(values)
        self.uniques: list[Any] = list(uniques)

    def where(self, predicate: Callable[[Any], bool]) -> NDArray[np.bool_]:
        """Rows whose value satisfies `predicate` (None never does)."""
        lookup = np.array([bool(predicate(u)) for u in self.uniques] + [False])
        return np.asarray(lookup[self.codes], dtype=bool)

    def categorical(self, keep: NDArray[np.bool_]) -> pd.Categorical:
        categories = pd.Index(self.uniques, dtype="str")
        return pd.Categorical.from_codes(self.codes[keep], categories=categories)


def weights_text(weights: Iterable[tuple[str, int]]) -> str:
    """`{"a":50,"b":50}`: the canonical text of split weights, in declaration order."""
    return orjson.dumps(dict(weights)).decode()


def _routing(
    codes: Mapping[str, _Codes], ts: NDArray[np.int64]
) -> tuple[NDArray[np.int8], int | None]:
    """Codes into `_ROUTINGS` per row, and the first split assignment's time.

    A session the split assigned but the router could not route as assigned
    (its assignment has a `fallback`) is `fallback`, not `split`: it ran on the
    catalog default, not on its cohort's variant. It still marks the start."""
    reason = codes["reason"]
    split = reason.where(lambda r: r == SPLIT_REASON) & (codes["split_id"].codes >= 0)
    fell_back = codes["fallback"].codes >= 0
    failed = reason.where(lambda r: r in FALLBACK_REASONS) | (codes["error_code"].codes >= 0)
    routing = np.where(
        fell_back, _FALLBACK, np.where(split, _SPLIT, np.where(failed, _FALLBACK, _STATIC))
    ).astype(np.int8)
    if not split.any():
        return routing, None
    start = int(ts[split].min())
    routing[ts < start] = _PRE_PERIOD
    return routing, start


def _unit_ids(columns: Mapping[str, NDArray[Any]], units: _Codes) -> NDArray[Any]:
    """Session id for session bucketing, tenant id for tenant bucketing, else the bucket key."""
    ids = columns["bucket_key"].copy()
    by_session = units.where(lambda u: u in col.SESSION_UNITS) | (units.codes < 0)
    by_tenant = units.where(lambda u: u == "tenant_id")
    ids[by_session] = columns["session_id"][by_session]
    ids[by_tenant] = columns["tenant_id"][by_tenant]
    return ids
