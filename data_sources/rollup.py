"""The poller's working form of the history rollups: integer-coded numpy columns in period parts.

A poll changes a few buckets at the end of the history it holds. Kept as one pandas frame per tier,
every poll paid for the whole tier (boolean selections and concatenations of 50,000 rows, Arrow-backed
string columns taken row by row) and that cost grew with the history. Here each tier is a dict of
*parts*, one per period the snapshot publishes (an hour of fine buckets, a day of hours, 30 days of
days), each part a ``Block``: a dict of equally long numpy arrays. Unit and entity codes are small
integers from a per-poller dictionary (``Codes``), so selecting, concatenating and re-aggregating rows
is numpy on numeric arrays; strings come back only when a changed part is encoded for the store
(``encode_block``), straight into Arrow with the pandas metadata readers expect, or when a whole frame
is asked for (``to_frame``). A poll's cost follows the parts it changed, not the history held.

Blocks are never changed in place: a poll works on copies of the parts dicts, so a poll that fails
half-way leaves the poller's tiers as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from data_sources.snapshots import EncodedFrame, encode_table, encoded_frame

BUCKET = "bucket"
UNIT = "unit"
ENTITY = "entity"
CODED = (UNIT, ENTITY)
"""Columns kept as integer codes (0 is NULL)."""

Block = dict[str, np.ndarray]
"""Rollup rows as equally long numpy arrays: ``bucket`` int64, unit/entity int32 codes, measures float64."""


class Codes:
    """Raw codes (strings) to small integers and back; 0 stands for NULL. Codes only ever grow, so an
    integer means the same string for the poller's whole life."""

    def __init__(self) -> None:
        self._index: dict[str | None, int] = {None: 0}
        self.names: list[str | None] = [None]
        self._arrow: pa.Array | None = None
        self._objects: np.ndarray | None = None

    def encode(self, values: Sequence[Any]) -> np.ndarray:
        """Integer codes of ``values`` (strings, None, or anything else read as its ``str``)."""
        index = self._index
        try:
            return np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values))
        except (KeyError, TypeError):
            pass
        out = np.empty(len(values), dtype=np.int32)
        for position, value in enumerate(values):
            name = value if value is None or isinstance(value, str) else str(value)
            code = index.get(name)
            if code is None:
                code = index[name] = len(self.names)
                self.names.append(name)
            out[position] = code
        return out

    def code(self, name: str | None) -> int | None:
        """The code of ``name``, None when it was never seen."""
        return self._index.get(name)

    def arrow(self, codes: np.ndarray) -> pa.Array:
        """The strings of ``codes`` as an Arrow array (NULL for 0)."""
        if self._arrow is None or len(self._arrow) != len(self.names):
            self._arrow = pa.array(self.names, type=pa.large_string())
        return self._arrow.take(pa.array(codes, type=pa.int32()))

    def strings(self, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """The strings of ``codes`` as a pandas ``string`` array (NA for 0)."""
        if self._objects is None or len(self._objects) != len(self.names):
            self._objects = np.array(self.names, dtype=object)
        return pd.array(self._objects[codes], dtype="string")

    def mask(self, names: Iterable[str]) -> np.ndarray:
        """Per code, True when its string is in ``names`` (False for NULL)."""
        wanted = set(names)
        return np.fromiter((name in wanted for name in self.names), dtype=bool, count=len(self.names))


def length(block: Block) -> int:
    """Rows in a block."""
    return len(block[BUCKET])


def empty_block(columns: Sequence[str]) -> Block:
    """A block without rows, with every column typed."""
    return {name: np.empty(0, dtype=_dtype(name)) for name in columns}


def _dtype(name: str) -> str:
    return "int64" if name == BUCKET else "int32" if name in CODED else "float64"


def take(block: Block, rows: np.ndarray) -> Block:
    """The rows selected by a boolean mask or an index array."""
    return {name: values[rows] for name, values in block.items()}


def concat(blocks: Sequence[Block], columns: Sequence[str]) -> Block:
    """Blocks one after the other (``columns`` names them when ``blocks`` is empty)."""
    blocks = [b for b in blocks if length(b)]
    if not blocks:
        return empty_block(columns)
    if len(blocks) == 1:
        return blocks[0]
    return {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}


def floored(block: Block, size: int) -> Block:
    """The block with each bucket moved to the start of its ``size``-second period."""
    return block | {BUCKET: block[BUCKET] - block[BUCKET] % size}


def combine(block: Block, keys: Sequence[str], aggregations: dict[str, str]) -> Block:
    """Rows re-aggregated per ``keys`` (count/sum add up, min/max stay min/max; NaN ignored), sorted
    by the keys' integer values."""
    columns = [*keys, *aggregations]
    if not length(block):
        return empty_block(columns)
    buckets = block[BUCKET]
    low = int(buckets.min())
    key = buckets - low
    widths = []
    for name in keys[1:]:
        width = int(block[name].max()) + 1
        widths.append(width)
        key = key * width + block[name]
    groups, inverse = np.unique(key, return_inverse=True)
    out: Block = {}
    rest = groups
    for name, width in zip(reversed(keys[1:]), reversed(widths), strict=True):
        out[name] = (rest % width).astype(np.int32)
        rest = rest // width
    out[BUCKET] = rest + low
    result = {name: out[name] for name in keys}
    count = len(groups)
    for name, agg in aggregations.items():
        values = block[name]
        if agg in ("count", "sum"):
            result[name] = np.bincount(inverse, weights=np.nan_to_num(values), minlength=count)
        else:
            found = np.full(count, np.nan)
            (np.fmax if agg == "max" else np.fmin).at(found, inverse, values)
            result[name] = found
    return result


def split(block: Block, period: int) -> dict[int, Block]:
    """A block cut into parts by ``period`` (keys: period starts)."""
    if not length(block):
        return {}
    starts = block[BUCKET] - block[BUCKET] % period
    order = np.argsort(starts, kind="stable")
    starts = starts[order]
    edges = np.flatnonzero(np.diff(starts)) + 1
    bounds = [0, *edges.tolist(), len(starts)]
    return {int(starts[a]): take(block, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a}


@dataclass
class Tier:
    """One retention tier: its rows in parts of ``period`` seconds, buckets of ``size`` seconds."""

    size: int
    period: int
    columns: tuple[str, ...]
    parts: dict[int, Block] = field(default_factory=dict)

    @classmethod
    def of(cls, block: Block, size: int, period: int, columns: Sequence[str]) -> Tier:
        """A tier holding ``block``'s rows."""
        return cls(size, period, tuple(columns), split(block, period))

    def copy(self) -> Tier:
        """A tier sharing this one's parts (blocks are never changed in place)."""
        return replace(self, parts=dict(self.parts))

    def __len__(self) -> int:
        return sum(length(part) for part in self.parts.values())

    def replace(self, buckets: Iterable[int], fresh: Block) -> set[int]:
        """Rows of ``buckets`` replaced by ``fresh`` (rows of those buckets only); the periods changed."""
        by_period: dict[int, list[int]] = {}
        for bucket in buckets:
            by_period.setdefault(bucket - bucket % self.period, []).append(bucket)
        if not by_period:
            return set()
        periods = fresh[BUCKET] - fresh[BUCKET] % self.period if length(fresh) else None
        changed = set()
        for period, replaced in by_period.items():
            pieces = []
            old = self.parts.get(period)
            if old is not None:
                kept = ~np.isin(old[BUCKET], replaced)
                pieces.append(old if kept.all() else take(old, kept))
            if periods is not None:
                new = periods == period
                if new.any():
                    pieces.append(take(fresh, new))
            if old is None and not pieces:
                continue
            merged = concat(pieces, self.columns)
            if length(merged):
                self.parts[period] = merged
            else:
                self.parts.pop(period, None)
            changed.add(period)
        return changed

    def select(self, periods: Iterable[int], size: int) -> Block:
        """Rows whose bucket lies in one of the ``size``-second ``periods``."""
        periods = sorted(set(periods))
        if not periods:
            return empty_block(self.columns)
        keys = sorted({q for p in periods for q in range(p - p % self.period, p + size, self.period)})
        found = [self.parts[q] for q in keys if q in self.parts]
        rows = concat(found, self.columns)
        if not length(rows):
            return rows
        starts = rows[BUCKET] - rows[BUCKET] % size
        inside = np.isin(starts, periods)
        return rows if inside.all() else take(rows, inside)

    def drop_before(self, floor: int) -> set[int]:
        """Rows with buckets before ``floor`` removed; the periods whose rows changed (parts that aged
        out entirely are just gone)."""
        changed = set()
        for period in [p for p in self.parts if p < floor]:
            if period + self.period <= floor:
                del self.parts[period]
                continue
            part = self.parts[period]
            kept = part[BUCKET] >= floor
            if not kept.all():
                self.parts[period] = take(part, kept)
                changed.add(period)
        return changed

    def block(self) -> Block:
        """Every row, parts in period order."""
        return concat([self.parts[p] for p in sorted(self.parts)], self.columns)

    def newest(self) -> int | None:
        """The newest bucket held."""
        if not self.parts:
            return None
        return int(self.parts[max(self.parts)][BUCKET].max())


@dataclass
class Encoder:
    """Blocks to frames and to encoded snapshot parts, with the unit and entity dictionaries."""

    units: Codes = field(default_factory=Codes)
    entities: Codes = field(default_factory=Codes)
    _metadata: dict[tuple[str, ...], dict[bytes, bytes]] = field(default_factory=dict, repr=False)

    def codes(self, name: str) -> Codes:
        return self.units if name == UNIT else self.entities

    def to_frame(self, block: Block, columns: Sequence[str]) -> pd.DataFrame:
        """A block as a pandas frame: unit and entity as ``string``, buckets int64, measures float64."""
        data: dict[str, Any] = {}
        for name in columns:
            values = block[name]
            data[name] = self.codes(name).strings(values) if name in CODED else values
        return pd.DataFrame(data, columns=list(columns))

    def encode(self, block: Block, columns: Sequence[str]) -> EncodedFrame:
        """A block encoded as a snapshot frame, decoding to what ``to_frame`` gives.

        Built as Arrow arrays directly (``pa.Table.from_pandas`` costs several times more per part),
        with the pandas metadata of the same frame so readers get the same dtypes.
        """
        if not length(block):
            return encoded_frame(self.to_frame(block, columns))
        arrays = [self.codes(name).arrow(block[name]) if name in CODED else pa.array(block[name]) for name in columns]
        table = pa.Table.from_arrays(arrays, names=list(columns))
        return EncodedFrame(encode_table(table.replace_schema_metadata(self._pandas_metadata(tuple(columns)))))

    def _pandas_metadata(self, columns: tuple[str, ...]) -> dict[bytes, bytes]:
        found = self._metadata.get(columns)
        if found is None:
            sample = pd.DataFrame(
                {
                    name: pd.array(["x"], dtype="string") if name in CODED else np.zeros(1, dtype=_dtype(name))
                    for name in columns
                }
            )
            schema = pa.Table.from_pandas(sample, preserve_index=False).schema  # no index: any length fits
            found = self._metadata[columns] = dict(schema.metadata)
        return found
