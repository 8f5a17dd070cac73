"""The official `vastdb` SDK (2.1.0) writing to our emulator as it does in ordinary use: one
insert of a batch far over VastDB's 5 MiB request limit (the SDK inserts its first columns,
then sends the rest as `PUT ?rows` updates by `$row_id`), `Table.update` and `Table.delete`
committed and rolled back, `pocaduck-edge serve` over the result, a failing update or
delete rolled back, and bad edits refused with the reason.

Run: tests/python/setup_venv.sh && POCADUCK_EDGE_BIN=... VASTDB_EMULATOR_BIN=... \
     .venv/bin/python -m pytest tests/python/test_vastdb_emulator_writes.py
"""

import io
import os

import numpy as np
import pyarrow as pa
import pytest
import requests
import vastdb.errors

from edge_server import serve

BIN = os.environ.get("POCADUCK_EDGE_BIN")
EMULATOR_BIN = os.environ.get("VASTDB_EMULATOR_BIN")
pytestmark = pytest.mark.skipif(
    not (BIN and EMULATOR_BIN), reason="set POCADUCK_EDGE_BIN and VASTDB_EMULATOR_BIN"
)

# PoCADuck's VastDB table, as its ingestor writes it.
SCHEMA = pa.schema([("label", pa.uint64()), ("block_id", pa.utf8()), ("points", pa.list_(pa.int64()))])
LABELS = [1000 + 7 * i for i in range(300)] + [2**63 + 5]
POINTS_PER_LABEL = 3000  # 72 KB of int64 per label: 21.7 MB in all
UPDATED, DELETED = LABELS[:10], LABELS[10:20]
BUCKET, TABLE = "pocaduck", "dev"


def points_of(label, n=POINTS_PER_LABEL, shift=0):
    """`n` distinct points of a label, flat as PoCADuck stores them (x, y, z, x, y, z, ...)."""
    k = np.arange(n, dtype=np.int64)
    return np.stack([k + shift, np.full(n, label % 997, dtype=np.int64), 2 * k - label % 13], axis=1).ravel()


def batch_of(labels, **kwargs):
    return pa.record_batch([
        pa.array(labels, pa.uint64()),
        pa.array([f"{label % 4}_0_0" for label in labels]),
        pa.array([points_of(label, **kwargs) for label in labels], pa.list_(pa.int64())),
    ], schema=SCHEMA)


def table_of(tx):
    return tx.bucket(BUCKET).schema("writes").table(TABLE)


@pytest.fixture(scope="module")
def inserted(emulator):
    """The table with every label inserted in one `table.insert`; the row ids it returned."""
    batch = batch_of(LABELS)
    assert pa.ipc.get_record_batch_size(batch) > 20 * 2**20  # four times one request's limit
    with emulator.connect().transaction() as tx:
        table = tx.bucket(BUCKET).create_schema("writes").create_table(TABLE, SCHEMA)
        ids = table.insert(batch)
    return ids.to_pylist()


def contents(emulator):
    """{label: (row id, block id, points)} of every row, read with `$row_id`."""
    with emulator.connect().transaction() as tx:
        got = table_of(tx).select(internal_row_id=True).read_all().to_pylist()
    out = {r["label"]: (r["$row_id"], r["block_id"], r["points"]) for r in got}
    assert len(out) == len(got), "one row per label"
    return out


def test_a_large_insert_reads_back_whole_with_the_row_ids_it_returned(emulator, inserted):
    got = contents(emulator)
    assert sorted(got) == sorted(LABELS)
    for label, row_id in zip(LABELS, inserted):
        assert got[label][0] == row_id, label
        assert got[label][1] == f"{label % 4}_0_0", label
        assert np.array_equal(got[label][2], points_of(label)), label
    assert len(set(inserted)) == len(LABELS)


def edit(table):
    """Updates the points of UPDATED (shifted by 10**6, and shorter) and deletes DELETED."""
    rows = table.select(columns=["label"], internal_row_id=True).read_all().to_pylist()
    row_id = {r["label"]: r["$row_id"] for r in rows}
    new_points = pa.array([points_of(label, n=100, shift=10**6) for label in UPDATED], pa.list_(pa.int64()))
    # In reverse order: the SDK sorts the rows by `$row_id`.
    ids = pa.array([row_id[label] for label in UPDATED], pa.uint64())
    table.update(pa.record_batch([ids[::-1], new_points[::-1]], names=["$row_id", "points"]))
    table.delete(pa.record_batch([pa.array([row_id[label] for label in DELETED], pa.uint64())], names=["$row_id"]))


def check_edited(got, before):
    assert sorted(got) == sorted(set(before) - set(DELETED))
    for label, (row_id, block, points) in got.items():
        assert row_id == before[label][0] and block == before[label][1], label
        expected = points_of(label, n=100, shift=10**6) if label in UPDATED else before[label][2]
        assert np.array_equal(points, expected), label


def test_updates_and_deletes_rolled_back_leave_the_table_as_it_was(emulator, inserted):
    before = contents(emulator)
    with pytest.raises(RuntimeError, match="abandon"):
        with emulator.connect().transaction() as tx:
            table = table_of(tx)
            edit(table)
            seen = table.select(internal_row_id=True).read_all().to_pylist()
            check_edited({r["label"]: (r["$row_id"], r["block_id"], r["points"]) for r in seen}, before)
            raise RuntimeError("abandon the transaction: the SDK rolls back")
    assert contents(emulator) == before


@pytest.mark.parametrize("kind", ["update", "delete"])
def test_a_failing_edit_raises_and_its_rollback_leaves_the_table_as_it_was(emulator, inserted, kind):
    before = contents(emulator)
    # The second update (the first is `edit`'s update, then its delete) or the first delete.
    emulator.arm_write_fault(kind, after=1 if kind == "update" else 0)
    with pytest.raises(vastdb.errors.InternalServerError, match=f"the {kind} failed"):
        with emulator.connect().transaction() as tx:
            table = table_of(tx)
            edit(table)
            table.update(pa.record_batch([pa.array([before[LABELS[-1]][0]], pa.uint64()),
                                          pa.array([[1, 2, 3]], pa.list_(pa.int64()))],
                                         names=["$row_id", "points"]))
    assert contents(emulator) == before


def test_a_large_insert_whose_update_fails_is_rolled_back_whole(emulator, inserted):
    before = contents(emulator)
    new_labels = [10**6 + i for i in range(100)]  # 7 MB: an insert and two updates
    emulator.arm_write_fault("update", after=1)
    with pytest.raises(vastdb.errors.InternalServerError, match="the update failed"):
        with emulator.connect().transaction() as tx:
            table_of(tx).insert(batch_of(new_labels))
    assert contents(emulator) == before


@pytest.fixture(scope="module")
def edited(emulator, inserted):
    """The table after `edit`, committed; the contents before."""
    before = contents(emulator)
    with emulator.connect().transaction() as tx:
        edit(table_of(tx))
    return before


def test_committed_updates_and_deletes_are_kept(emulator, edited):
    check_edited(contents(emulator), edited)


def test_the_proxy_serves_the_edited_table(emulator, edited):
    args = ["--vastdb-endpoint", emulator.url, "--vastdb-bucket", BUCKET, "--vastdb-schema", "writes",
            "--vastdb-table", TABLE, "--vastdb-layout", "pocaduck"]
    env = {**os.environ, "VASTDB_ACCESS_KEY": emulator.access, "VASTDB_SECRET_KEY": emulator.secret}
    remaining = sorted(set(LABELS) - set(DELETED))
    with serve(BIN, args, env=env) as url:
        base = f"{url}/v1/datasets/{TABLE}"
        labels = requests.get(f"{base}/labels", timeout=60).json()["labels"]
        assert labels == [str(label) for label in remaining]
        for label in remaining:
            r = requests.get(f"{base}/labels/{label}/points?format=npy", timeout=60)
            assert r.status_code == 200, r.text
            shape = dict(n=100, shift=10**6) if label in UPDATED else {}
            expected = np.unique(points_of(label, **shape).reshape(-1, 3), axis=0)
            assert np.array_equal(np.load(io.BytesIO(r.content)), expected), label
        for label in DELETED[:3]:
            r = requests.get(f"{base}/labels/{label}/points?format=npy", timeout=60)
            assert r.status_code == 404, label


def ipc(batch):
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write(batch)
    return sink.getvalue()


ONE = pa.array([0], pa.uint64())
BAD_EDITS = {
    "unknown row": ("update", ipc(pa.record_batch([pa.array([2**40], pa.uint64()), pa.array(["x"])], names=["$row_id", "block_id"])),
                    "no row 1099511627776"),
    "no row id": ("update", ipc(pa.record_batch([pa.array(["x"])], names=["block_id"])),
                  'the first column must be "$row_id", not "block_id"'),
    "unknown column": ("update", ipc(pa.record_batch([ONE, pa.array([1])], names=["$row_id", "colour"])),
                       'no column "colour"'),
    "wrong type": ("update", ipc(pa.record_batch([ONE, pa.array(["seven"])], names=["$row_id", "label"])),
                   'column "label" as UInt64'),
    "row twice": ("delete", ipc(pa.record_batch([pa.array([0, 0], pa.uint64())], names=["$row_id"])),
                  "row 0 appears twice"),
    "delete with values": ("delete", ipc(pa.record_batch([ONE, pa.array(["x"])], names=["$row_id", "block_id"])),
                           'a delete carries only "$row_id", not 2 columns'),
    "not arrow": ("delete", b"not an arrow stream", "the body is not an Arrow IPC stream"),
}


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_bad_edits_are_refused_with_the_reason(emulator, inserted, case):
    kind, body, reason = BAD_EDITS[case]
    before = contents(emulator)
    with emulator.connect().transaction() as tx:
        api = tx._rpc.api
        send = api.update_rows if kind == "update" else api.delete_rows
        with pytest.raises(vastdb.errors.BadRequest, match="InvalidArgument") as raised:
            send(BUCKET, "writes", TABLE, record_batch=body, txid=tx.active_txid)
        assert reason in str(raised.value)
    assert contents(emulator) == before


def test_writes_that_are_not_emulated_are_a_501_naming_them(emulator, inserted):
    with emulator.connect().transaction() as tx:
        api = tx._rpc.api
        one = ipc(pa.record_batch([ONE], names=["$row_id"]))
        with pytest.raises(vastdb.errors.NotImplemented, match=r"DELETE \?rows&sub-table=.* is not emulated"):
            api.delete_rows(BUCKET, "writes", TABLE, record_batch=one, txid=tx.active_txid,
                            delete_from_imports_table=True)
        url = api._url(bucket=BUCKET, schema="writes", table=TABLE, command="rows")
        with pytest.raises(vastdb.errors.NotImplemented, match=r"GET \?rows is not emulated"):
            api._request(method="GET", url=url, headers=api._fill_common_headers(txid=tx.active_txid))
