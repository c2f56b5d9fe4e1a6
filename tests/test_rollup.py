"""The poller's columnar rollup (integer codes, period parts): pure functions against pandas as the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from data_sources.rollup import BUCKET, ENTITY, UNIT, Codes, Encoder, Tier, combine, concat, empty_block, split
from data_sources.snapshots import decode_frame, encode_frame

AGGREGATIONS = {"n": "count", "total": "sum", "peak": "max", "low": "min"}
COLUMNS = [BUCKET, UNIT, ENTITY, *AGGREGATIONS]


def random_rows(encoder: Encoder, count: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Rows over 6 hours of 5-minute buckets, 4 units (one NULL), 3 entities, measures with NaN."""
    rng = np.random.default_rng(seed)
    units = rng.choice(np.array(["19777", "19753", "19750", None], dtype=object), count)
    entities = rng.choice(np.array(["S1", "S2", "S3"], dtype=object), count)
    values = rng.integers(0, 100, count).astype(float)
    values[rng.random(count) < 0.1] = np.nan
    return {
        BUCKET: (1_795_132_800 + rng.integers(0, 72, count) * 300).astype("int64"),
        UNIT: encoder.units.encode(list(units)),
        ENTITY: encoder.entities.encode(list(entities)),
        "n": np.ones(count),
        "total": values,
        "peak": values,
        "low": values,
    }


def reference(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``combine`` done by pandas: groupby with NULL keys kept, NaN ignored (sum of nothing is 0)."""
    grouped = frame.groupby(keys, dropna=False)
    result = grouped.agg(n=("n", "sum"), total=("total", "sum"), peak=("peak", "max"), low=("low", "min"))
    return result.reset_index().sort_values(keys, na_position="first").reset_index(drop=True)


class TestCodes:
    def test_codes_are_stable_and_null_is_zero(self):
        codes = Codes()
        first = codes.encode(["a", None, "b", "a"])
        assert first.tolist() == [1, 0, 2, 1]
        assert codes.encode(["b", "c"]).tolist() == [2, 3], "new strings get new codes, old ones keep theirs"
        assert codes.encode([19777, "19777"]).tolist() == [4, 4], "numbers are read as their text"
        assert list(codes.strings(np.array([0, 3, 1]))) == [pd.NA, "c", "a"]
        assert codes.arrow(np.array([2, 0])).to_pylist() == ["b", None]
        assert codes.mask({"a", "c"}).tolist() == [False, True, False, True, False]


class TestCombine:
    @pytest.mark.parametrize("keys", [[BUCKET, UNIT], [BUCKET, UNIT, ENTITY]])
    def test_combine_equals_a_pandas_groupby(self, keys):
        encoder = Encoder()
        block = random_rows(encoder, 2000)
        block[BUCKET] = block[BUCKET] - block[BUCKET] % 3600
        combined = encoder.to_frame(combine(block, keys, AGGREGATIONS), [*keys, *AGGREGATIONS])
        expected = reference(
            encoder.to_frame(block, COLUMNS).drop(columns=[ENTITY] if ENTITY not in keys else []), keys
        )
        got = combined.sort_values(keys, na_position="first").reset_index(drop=True)
        assert_frame_equal(got, expected[got.columns], check_dtype=False)

    def test_combining_nothing_gives_typed_empty_columns(self):
        empty = combine(empty_block(COLUMNS), [BUCKET, UNIT], AGGREGATIONS)
        assert {name: values.dtype.name for name, values in empty.items()} == {
            BUCKET: "int64",
            UNIT: "int32",
            "n": "float64",
            "total": "float64",
            "peak": "float64",
            "low": "float64",
        }


class TestTier:
    def test_replacing_buckets_touches_only_their_parts_and_keeps_the_rest(self):
        encoder = Encoder()
        block = random_rows(encoder, 3000)
        tier = Tier.of(block, 300, 3600, COLUMNS)
        before = {period: part for period, part in tier.parts.items()}
        target = sorted(tier.parts)[2] + 600  # one bucket in the third hour
        fresh = {name: values[:1].copy() for name, values in block.items()} | {BUCKET: np.array([target])}
        copy = tier.copy()
        changed = copy.replace({target}, fresh)
        assert changed == {target - target % 3600}
        assert all(copy.parts[p] is before[p] for p in before if p not in changed), "other parts are shared"
        assert tier.parts == before, "the original tier is untouched"
        rows = copy.select({target}, 300)
        assert rows[BUCKET].tolist() == [target]
        assert len(copy) == len(tier) - int((block[BUCKET] == target).sum()) + 1

    def test_replacing_a_bucket_with_nothing_deletes_it_and_an_emptied_part(self):
        encoder = Encoder()
        block = random_rows(encoder, 50)
        only = int(block[BUCKET][0])
        lonely = {name: values[:1] for name, values in block.items()} | {BUCKET: np.array([only + 10 * 86400])}
        tier = Tier.of(concat([block, lonely], COLUMNS), 300, 3600, COLUMNS)
        assert tier.replace({only + 10 * 86400}, empty_block(COLUMNS)) == {only + 10 * 86400 - only % 3600}
        assert only + 10 * 86400 - only % 3600 not in tier.parts

    def test_select_and_drop_before_follow_bucket_periods(self):
        encoder = Encoder()
        block = random_rows(encoder, 1000)
        tier = Tier.of(block, 300, 3600, COLUMNS)
        hours = sorted(tier.parts)
        two_hours = tier.select({hours[0]}, 7200)
        expected = (block[BUCKET] >= hours[0]) & (block[BUCKET] < hours[0] + 7200)
        assert sorted(two_hours[BUCKET].tolist()) == sorted(block[BUCKET][expected].tolist())
        tier.drop_before(hours[3])
        assert min(tier.parts) == hours[3]
        assert len(tier) == int((block[BUCKET] >= hours[3]).sum())

    def test_split_orders_parts_by_period(self):
        encoder = Encoder()
        block = random_rows(encoder, 500)
        parts = split(block, 3600)
        assert list(parts) == sorted(parts)
        assert sum(len(p[BUCKET]) for p in parts.values()) == 500


def test_an_encoded_part_decodes_like_the_frame_pandas_would_have_encoded():
    encoder = Encoder()
    block = random_rows(encoder, 300)
    frame = encoder.to_frame(block, COLUMNS)
    decoded = decode_frame(encoder.encode(block, COLUMNS).payload)
    assert_frame_equal(decoded, decode_frame(encode_frame(frame)))
    assert decoded[UNIT].isna().sum() == (block[UNIT] == 0).sum()
    empty = decode_frame(encoder.encode(empty_block(COLUMNS), COLUMNS).payload)
    assert list(empty.columns) == COLUMNS and empty.empty
