"""The reference test: PoCADuck's own `Query` against our import and HTTP API.

Datasets are written with the real `pocaduck` package (see pocaduck_fixture.py), imported
with `pocaduck-edge import`, and served by `pocaduck-edge serve` on a loopback port; every
label's points, counts and blocks must equal what PoCADuck answers.

Run: tests/python/setup_venv.sh && POCADUCK_EDGE_BIN=<path to pocaduck-edge> .venv/bin/python -m pytest tests/python
"""

import io
import os
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest
import requests

from edge_server import serve
from pocaduck_fixture import LABELS

BIN = os.environ.get("POCADUCK_EDGE_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="set POCADUCK_EDGE_BIN to the pocaduck-edge binary")


@pytest.fixture(scope="session")
def server(sources, tmp_path_factory):
    """Imports both layouts and serves them; yields the base URL."""
    out = tmp_path_factory.mktemp("edge")
    for source in sources:
        target = out / os.path.basename(source)
        subprocess.run([BIN, "import", source, str(target)], check=True, timeout=300)
    # A tiny memory budget forces several passes over the raw layout: same result expected.
    subprocess.run([BIN, "import", sources[0], str(out / "raw-passes"), "--memory-mb", "1"], check=True, timeout=300)
    args = []
    for name in ["raw", "optimized", "raw-passes"]:
        args += ["--data", str(out / name)]
    with serve(BIN, args) as url:
        yield url


DATASETS = ["raw", "optimized", "raw-passes"]


def get(url, **kw):
    r = requests.get(url, timeout=60, **kw)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    return r


def npy(server, ds, label, query=""):
    r = get(f"{server}/v1/datasets/{ds}/labels/{label}/points?format=npy{query}")
    return np.load(io.BytesIO(r.content))


def as_set(points):
    return {tuple(map(int, row)) for row in points}


@pytest.mark.parametrize("ds", DATASETS)
def test_labels_equal_pocaducks(server, queries, ds):
    labels, after = [], None
    for _ in range(100):
        url = f"{server}/v1/datasets/{ds}/labels?limit=3" + (f"&after={after}" if after else "")
        page = get(url).json()
        assert all(isinstance(l, str) for l in page["labels"])
        labels += [int(l) for l in page["labels"]]
        after = page["next_after"]
        if after is None:
            break
    assert labels == sorted(int(l) for l in queries[ds].get_labels())
    assert set(labels) == set(LABELS)


@pytest.mark.parametrize("ds", DATASETS)
def test_every_labels_points_equal_pocaducks(server, queries, ds):
    for label in LABELS:
        expected = queries[ds].get_points(label)
        ours = npy(server, ds, label)
        assert ours.dtype == np.int64 and ours.shape[1] == 3
        assert as_set(ours) == as_set(expected), label
        assert len(ours) == len(as_set(expected)), f"label {label}: no duplicates"
        exact = npy(server, ds, label, "&order=xyz")
        assert np.array_equal(exact, np.unique(expected, axis=0)), label


@pytest.mark.parametrize("ds", DATASETS)
def test_counts_and_blocks(server, queries, sources, ds):
    raw = queries["raw"]
    for label in LABELS:
        info = get(f"{server}/v1/datasets/{ds}/labels/{label}").json()
        distinct = len(as_set(queries[ds].get_points(label)))
        assert info["label"] == str(label)
        assert info["point_count"] == distinct
        if ds == "optimized":
            # PoCADuck's optimized index holds distinct counts and no blocks.
            assert info["point_count"] == queries[ds].get_point_count(label)
            assert info["blocks"] == [] and queries[ds].get_blocks_for_label(label) == []
        else:
            # PoCADuck's raw count includes points repeated across blocks; ours is distinct.
            assert raw.get_point_count(label) >= info["point_count"]
            assert sum(b["point_count"] for b in info["blocks"]) == raw.get_point_count(label)
            assert {b["block_id"] for b in info["blocks"]} == set(raw.get_blocks_for_label(label))


def test_json_arrow_and_parquet_carry_big_labels_exactly(server, queries):
    label = 2**63 - 5
    expected = as_set(queries["raw"].get_points(label))
    body = get(f"{server}/v1/datasets/raw/labels/{label}/points?format=json").json()
    assert body["label"] == str(label) and body["dims"] == 3 and body["count"] == len(expected)
    assert {tuple(p) for p in body["points"]} == expected
    r = get(f"{server}/v1/datasets/raw/labels/{label}/points")
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.schema.field("label").type == pa.uint64()
    assert table.schema.field("points").type == pa.list_(pa.field("item", pa.int64(), nullable=False), 3)
    assert set(table.column("label").to_pylist()) == {label}
    assert {tuple(p) for p in table.column("points").to_pylist()} == expected
    # shape=columns: a column per dim, the one label in the schema metadata.
    r = get(f"{server}/v1/datasets/raw/labels/{label}/points?shape=columns")
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.schema.names == ["x", "y", "z"]
    assert table.schema.metadata[b"pocaduck_edge:label"] == str(label).encode()
    assert all(pa.types.is_integer(t) for t in table.schema.types)
    assert set(zip(*(table.column(d).to_pylist() for d in "xyz"))) == expected
    # Parquet: the label's type comes from the Parquet schema alone (no ARROW:schema key).
    r = get(f"{server}/v1/datasets/raw/labels/{label}/points?format=parquet")
    parquet = pq.ParquetFile(io.BytesIO(r.content))
    assert b"ARROW:schema" not in (parquet.metadata.metadata or {})
    table = parquet.read()
    assert table.schema.field("label").type == pa.uint64()
    assert set(table.column("label").to_pylist()) == {label}
    assert set(zip(*(table.column(d).to_pylist() for d in "xyz"))) == expected


def test_unknown_label_is_404_with_a_json_error(server):
    r = requests.get(f"{server}/v1/datasets/raw/labels/424242/points", timeout=60)
    assert r.status_code == 404
    assert set(r.json()["error"]) == {"code", "message", "request_id"}
    assert r.json()["error"]["request_id"] == r.headers["X-Request-Id"]
