"""`pocaduck-edge vastdb load` straight from a PoCADuck directory, checked by the official
`vastdb` SDK and by PoCADuck itself: load the raw dataset written by PoCADuck's `Ingestor`
into the emulator in each table layout, read every label back with `table.select(...)`, and
through `pocaduck-edge serve`'s VastDB backend; both must equal `Query.get_points`. A load
whose insert fails mid-way and is then rerun ends with every label exactly once.

Run: tests/python/setup_venv.sh && POCADUCK_EDGE_BIN=... VASTDB_EMULATOR_BIN=... \
     .venv/bin/python -m pytest tests/python/test_vastdb_load.py
"""

import contextlib
import io
import os
import subprocess

import ibis
import numpy as np
import pyarrow as pa
import pytest
import requests

from edge_server import serve
from pocaduck_fixture import LABELS

BIN = os.environ.get("POCADUCK_EDGE_BIN")
EMULATOR_BIN = os.environ.get("VASTDB_EMULATOR_BIN")
pytestmark = pytest.mark.skipif(
    not (BIN and EMULATOR_BIN), reason="set POCADUCK_EDGE_BIN and VASTDB_EMULATOR_BIN"
)
LAYOUTS = ["columnar", "pocaduck"]


def keys(emu):
    return {**os.environ, "VASTDB_ACCESS_KEY": emu.access, "VASTDB_SECRET_KEY": emu.secret}


def load(emu, source, table, layout, *extra):
    return subprocess.run(
        [BIN, "vastdb", "load", source, "--endpoint", emu.url, "--bucket", "pocaduck",
         "--schema", "pocaduck/loaded", "--table", table, "--layout", layout, *extra],
        env=keys(emu), capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def loaded(emulator, sources):
    """Loads the raw PoCADuck directory into a table per layout."""
    for layout in LAYOUTS:
        done = load(emulator, sources[0], layout, layout)
        assert done.returncode == 0, done.stderr
    return emulator


def as_set(points):
    return {tuple(map(int, row)) for row in points}


def sdk_points(emu, table_name, layout, label):
    """The label's points as the official SDK reads them from the table."""
    session = emu.connect()
    with session.transaction() as tx:
        table = tx.bucket("pocaduck").schema("pocaduck").schema("loaded").table(table_name)
        predicate = table["label"] == ibis.literal(label, type="uint64")
        result = table.select(predicate=predicate).read_all()
    if layout == "columnar":
        return np.stack([result[d].to_numpy() for d in ["x", "y", "z"]], axis=1)
    rows = [np.asarray(r, dtype=np.int64).reshape(-1, 3) for r in result["points"].to_pylist()]
    return np.concatenate(rows) if rows else np.empty((0, 3), dtype=np.int64)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_sdk_reads_back_every_label_pocaduck_has(loaded, queries, layout):
    for label in LABELS:
        expected = queries["raw"].get_points(label)
        got = sdk_points(loaded, layout, layout, label)
        assert len(got) == len(as_set(expected)), label  # no duplicate points
        assert as_set(got) == as_set(expected), label


def test_the_columnar_table_stores_coordinates_as_int32_when_they_fit(loaded):
    # Every coordinate of the PoCADuck dataset fits int32: half the bytes of int64.
    session = loaded.connect()
    with session.transaction() as tx:
        table = tx.bucket("pocaduck").schema("pocaduck").schema("loaded").table("columnar")
        types = {f.name: f.type for f in table.columns()}
    assert types == {"label": pa.uint64(), "x": pa.int32(), "y": pa.int32(), "z": pa.int32()}, types


@pytest.fixture(scope="module")
def server(loaded):
    """`pocaduck-edge serve` over both tables; yields the base URL per layout."""
    with contextlib.ExitStack() as stack:
        urls = {}
        for layout in LAYOUTS:
            args = ["--vastdb-endpoint", loaded.url, "--vastdb-bucket", "pocaduck",
                    "--vastdb-schema", "pocaduck/loaded", "--vastdb-table", layout,
                    "--vastdb-layout", layout]
            urls[layout] = stack.enter_context(serve(BIN, args, env=keys(loaded)))
        yield urls


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_proxy_serves_every_label_as_pocaduck_does(server, queries, layout):
    base = f"{server[layout]}/v1/datasets/{layout}"
    labels = requests.get(f"{base}/labels", timeout=60).json()["labels"]
    assert labels == [str(l) for l in sorted(LABELS)]
    for label in LABELS:
        r = requests.get(f"{base}/labels/{label}/points?format=npy", timeout=60)
        assert r.status_code == 200, r.text
        got = np.load(io.BytesIO(r.content))
        expected = queries["raw"].get_points(label)
        assert as_set(got) == as_set(expected), label
        info = requests.get(f"{base}/labels/{label}", timeout=60).json()
        assert info["point_count"] == len(as_set(expected)), label


def test_a_failed_load_rolls_back_and_a_rerun_completes_it(emulator, sources, queries):
    # Commit after every label, and fail the fourth insert.
    emulator.arm_write_fault("insert", after=3)
    failed = load(emulator, sources[0], "rerun", "columnar", "--commit-mb", "0")
    assert failed.returncode != 0
    assert "InternalError" in failed.stderr, failed.stderr
    rerun = load(emulator, sources[0], "rerun", "columnar", "--commit-mb", "0")
    assert rerun.returncode == 0, rerun.stderr
    # Some labels went in before the failure and were kept; the rerun added the others.
    assert "labels were already there" in rerun.stderr
    kept = int(rerun.stderr.split(";")[-1].split()[0])
    assert 0 < kept < len(LABELS), rerun.stderr
    for label in LABELS:
        got = sdk_points(emulator, "rerun", "columnar", label)
        expected = as_set(queries["raw"].get_points(label))
        assert len(got) == len(expected) and as_set(got) == expected, label
