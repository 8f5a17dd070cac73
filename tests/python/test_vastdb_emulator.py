"""The official `vastdb` SDK (2.1.0, from PyPI) against our emulator: the emulator passes when
the real client creates, inserts, selects with every predicate, pages and recovers as it
would against a VAST cluster, and every result equals what was inserted.

Run: tests/python/setup_venv.sh && VASTDB_EMULATOR_BIN=<path to vastdb-emulator> \
     .venv/bin/python -m pytest tests/python/test_vastdb_emulator.py
"""

import os

import ibis
import pyarrow as pa
import pytest
import vastdb
import vastdb.errors
from vastdb._internal import QueryDataInternalError
from vastdb.config import QueryConfig

from emulator_fixture import Emulator

BIN = os.environ.get("VASTDB_EMULATOR_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="set VASTDB_EMULATOR_BIN to the vastdb-emulator binary")

SCHEMA = pa.schema([
    ("label", pa.uint64()),
    ("name", pa.utf8()),
    ("points", pa.list_(pa.int64())),
    ("xyz", pa.list_(pa.int64(), 3)),
])
BIG = 2**63 + 12345  # a label no float or JS number holds exactly
LABELS = [1, 2, 3, 2**53 + 1, BIG, 2**64 - 1]


def u64(value):
    """A uint64 literal. ibis turns `column == <int above 2**63 - 1>` into plain `False`, and
    the SDK then answers an empty result without asking the server: say the type."""
    return ibis.literal(value, type="uint64")


def rows():
    """(label, name, points, xyz) per row: labels repeat, names and lists vary."""
    out = []
    for i, label in enumerate(LABELS * 2):
        points = [i * 10 + k - 7 for k in range(i % 5)]
        out.append((label, f"n{i % 4}", points, [i, -i, 2**62 + i]))
    return out


def batch(rs):
    return pa.record_batch([pa.array([r[c] for r in rs], type=SCHEMA.field(c).type) for c in range(4)], schema=SCHEMA)


@pytest.fixture(scope="module")
def table_name(emulator):
    with emulator.connect().transaction() as tx:
        schema = tx.bucket("pocaduck").create_schema("sdk")
        table = schema.create_table("points", SCHEMA)
        table.insert(batch(rows()[:7]))
        table.insert(batch(rows()[7:]))
    return "points"


def select(emulator, table_name, **kwargs):
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").table(table_name)
        predicate = kwargs.pop("where", None)
        result = table.select(predicate=predicate(table) if predicate else None, **kwargs).read_all()
    return result.to_pylist()


def as_tuples(records):
    return sorted((r["label"], r["name"], r["points"], r["xyz"]) for r in records)


def test_select_all_returns_every_inserted_row(emulator, table_name):
    assert as_tuples(select(emulator, table_name)) == sorted(rows())


PREDICATES = {
    "eq": (lambda t: t["label"] == u64(BIG), lambda r: r[0] == BIG),
    "ne": (lambda t: t["label"] != 2, lambda r: r[0] != 2),
    "lt": (lambda t: t["label"] < 3, lambda r: r[0] < 3),
    "le": (lambda t: t["label"] <= 3, lambda r: r[0] <= 3),
    "gt": (lambda t: t["label"] > 2**53, lambda r: r[0] > 2**53),
    "ge": (lambda t: t["label"] >= 2**53 + 1, lambda r: r[0] >= 2**53 + 1),
    "between": (lambda t: t["label"].between(2, 2**53 + 1), lambda r: 2 <= r[0] <= 2**53 + 1),
    "isin": (lambda t: t["label"].isin([u64(1), u64(2**64 - 1), u64(99)]), lambda r: r[0] in (1, 2**64 - 1, 99)),
    "and": (lambda t: (t["label"] == 2) & (t["name"] == "n1"), lambda r: r[0] == 2 and r[1] == "n1"),
    "or": (lambda t: (t["name"] == "n0") | (t["name"] == "n3"), lambda r: r[1] in ("n0", "n3")),
    "string": (lambda t: t["name"] > "n1", lambda r: r[1] > "n1"),
}


@pytest.mark.parametrize("name", sorted(PREDICATES))
def test_each_predicate_selects_what_python_selects(emulator, table_name, name):
    predicate, keep = PREDICATES[name]
    expected = sorted(r for r in rows() if keep(r))
    assert expected, "each predicate must select something"
    assert as_tuples(select(emulator, table_name, where=predicate)) == expected


def test_projection_returns_only_the_asked_columns(emulator, table_name):
    got = select(emulator, table_name, columns=["xyz"], where=lambda t: t["label"] == u64(2**64 - 1))
    assert sorted(r["xyz"] for r in got) == sorted(r[3] for r in rows() if r[0] == 2**64 - 1)
    assert all(set(r) == {"xyz"} for r in got)


def test_row_ids_are_insertion_positions(emulator, table_name):
    got = select(emulator, table_name, columns=["label"], internal_row_id=True)
    assert sorted((r["$row_id"], r["label"]) for r in got) == [(i, r[0]) for i, r in enumerate(rows())]


@pytest.mark.parametrize("sub_splits", [1, 4])
def test_paging_one_row_per_reply_returns_every_row(emulator, table_name, sub_splits):
    config = QueryConfig(limit_rows_per_sub_split=1, num_sub_splits=sub_splits)
    assert as_tuples(select(emulator, table_name, config=config)) == sorted(rows())


def test_count_only(emulator, table_name):
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").table(table_name)
        assert table.select(columns=[], predicate=table["label"] == 2).read_all().num_rows == 2


def test_many_blocks_split_across_sub_splits(emulator):
    """300K rows in 64Ki-row blocks: five blocks over four sub-splits, paged."""
    n = 300_000
    schema = pa.schema([("label", pa.uint64()), ("x", pa.int64())])
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").create_table("blocks", schema)
        for start in range(0, n, 100_000):
            labels = pa.array([i // 1000 for i in range(start, start + 100_000)], pa.uint64())
            xs = pa.array(range(start, start + 100_000), pa.int64())
            table.insert(pa.record_batch([labels, xs], schema=schema))
    config = QueryConfig(num_row_groups_per_sub_split=1, limit_rows_per_sub_split=20_000)
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").table("blocks")
        everything = table.select(columns=["x"], config=config).read_all()
        some = table.select(columns=["x"], predicate=table["label"].between(60, 70), config=config).read_all()
    assert sorted(everything["x"].to_pylist()) == list(range(n))
    assert sorted(some["x"].to_pylist()) == list(range(60_000, 71_000))


def test_pocaduck_layout_keeps_every_row_of_a_label(emulator):
    """PoCADuck's `dev` table: several rows per label, each a block's points. All are read."""
    schema = pa.schema([("label", pa.uint64()), ("block_id", pa.utf8()), ("points", pa.list_(pa.int64()))])
    blocks = {BIG: [("0_0_0", [1, 2, 3, 4, 5, 6]), ("0_0_1", [7, 8, 9]), ("1_0_0", [-1, -2, -3])], 7: [("0_0_0", [0, 0, 0])]}
    records = [(label, block, pts) for label, bs in blocks.items() for block, pts in bs]
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").create_table("pocaduck_dev", schema)
        table.insert(pa.record_batch([pa.array([r[i] for r in records], schema.field(i).type) for i in range(3)], schema=schema))
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").table("pocaduck_dev")
        got = table.select(columns=["block_id", "points"], predicate=table["label"] == u64(BIG)).read_all().to_pylist()
    assert sorted((r["block_id"], r["points"]) for r in got) == sorted(blocks[BIG])


def test_listing_and_dropping_schemas_and_tables(emulator):
    with emulator.connect().transaction() as tx:
        bucket = tx.bucket("pocaduck")
        parent = bucket.create_schema("listing")
        child = parent.create_schema("child")
        child.create_table("a", pa.schema([("v", pa.int32())]))
        child.create_table("b", pa.schema([("v", pa.int32())]))
    with emulator.connect().transaction() as tx:
        parent = tx.bucket("pocaduck").schema("listing")
        assert [s.name for s in parent.schemas()] == ["listing/child"]
        child = parent.schema("child")
        assert sorted(t.name for t in child.tables()) == ["a", "b"]
        child.table("a").drop()
        assert [t.name for t in child.tables()] == ["b"]
        child.table("b").drop()
        child.drop()
        assert list(parent.schemas()) == []
    with emulator.connect().transaction() as tx:
        with pytest.raises(vastdb.errors.MissingBucket):
            tx.bucket("no-such-bucket")


def test_wrong_secret_is_forbidden(emulator, table_name):
    with pytest.raises(vastdb.errors.Forbidden):
        with emulator.connect(secret="not-the-secret").transaction() as tx:
            tx.bucket("pocaduck")


def test_slowdown_is_retried_by_the_sdk(emulator, table_name):
    before = emulator.stats()["queries"]
    emulator.fault("slowdown", count=2)
    assert as_tuples(select(emulator, table_name)) == sorted(rows())
    stats = emulator.stats()
    assert (stats["queries"], stats["pending_faults"]) == (before + 3, 0)


def test_failed_stream_raises_in_the_sdk(emulator, table_name):
    emulator.fault("failed", code=77)
    with pytest.raises(QueryDataInternalError, match="77"):
        select(emulator, table_name)


def test_tables_survive_a_restart(tmp_path):
    first = Emulator(BIN, tmp_path)
    try:
        with first.connect().transaction() as tx:
            table = tx.bucket("pocaduck").create_schema("kept").create_table("t", SCHEMA)
            table.insert(batch(rows()))
    finally:
        first.stop()
    second = Emulator(BIN, tmp_path)
    try:
        with second.connect().transaction() as tx:
            table = tx.bucket("pocaduck").schema("kept").table("t")
            got = table.select().read_all().to_pylist()
        assert as_tuples(got) == sorted(rows())
    finally:
        second.stop()


@pytest.mark.parametrize("kind", ["truncate", "reset"])
def test_cut_replies_are_resent_by_the_sdk(emulator, table_name, kind):
    """A reply cut mid-stream or before its first byte: the SDK re-sends from its saved state."""
    before = emulator.stats()["queries"]
    emulator.fault(kind)
    assert as_tuples(select(emulator, table_name)) == sorted(rows())
    stats = emulator.stats()
    assert (stats["queries"], stats["pending_faults"]) == (before + 2, 0)


def test_rows_are_seen_by_their_transaction_and_kept_only_on_commit(emulator, table_name):
    schema = pa.schema([("label", pa.uint64())])
    with emulator.connect().transaction() as tx:
        tx.bucket("pocaduck").schema("sdk").create_table("txn", schema)
    one = pa.record_batch([pa.array([1], pa.uint64())], schema=schema)
    with pytest.raises(RuntimeError, match="abandon"):
        with emulator.connect().transaction() as tx:
            table = tx.bucket("pocaduck").schema("sdk").table("txn")
            table.insert(one)
            assert table.select().read_all()["label"].to_pylist() == [1]
            raise RuntimeError("abandon the transaction: the SDK rolls back")
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").table("txn")
        assert table.select().read_all().num_rows == 0
        table.insert(one)
    with emulator.connect().transaction() as tx:
        table = tx.bucket("pocaduck").schema("sdk").table("txn")
        assert table.select().read_all()["label"].to_pylist() == [1]
