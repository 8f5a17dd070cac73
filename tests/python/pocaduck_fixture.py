"""Writes PoCADuck datasets with the real `pocaduck` package, as a reference for our importer.

`make_datasets(base)` writes, under `base`:
- `raw/`: PoCADuck's raw layout, written by its own `Ingestor` from three workers, with labels
  split across blocks and workers, duplicate points across blocks, negative coordinates,
  labels above 2^53 and files small enough that labels spill across them;
- `optimized/`: the same points in PoCADuck's optimized layout (`optimized/**/*.parquet` with
  `label, data` and `optimized/optimized_index.db`), which `Query` detects and reads. The
  PyPI wheel does not ship PoCADuck's optimizer script, so the layout is written here the way
  `Query` reads it, and checked through `Query` itself.

Run `python tests/python/pocaduck_fixture.py DIR` to write them by hand.
"""

import os
import shutil
import sys

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pocaduck import Ingestor, Query, StorageConfig

# Label -> number of points before duplicates; ids above 2^53 (PoCADuck stores int64, so < 2^63).
LABELS = {
    1: 1,
    7: 40,
    1001: 3_000,
    50_000: 25_000,
    2**53 + 1: 12_000,
    2**60 + 7: 800,
    2**63 - 5: 5_000,
}
WORKERS = 3
BLOCKS_PER_LABEL = 4


def label_points(label, n, rng):
    """A noisy shell (a neuron-like surface) with some negative coordinates."""
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radius = 20 + (label % 97)
    centre = rng.integers(-200, 2000, size=3)
    return np.round(centre + directions * radius).astype(np.int64)


def make_raw(path, rng):
    os.makedirs(path, exist_ok=True)
    config = StorageConfig(base_path=path)
    ingestors = [Ingestor(config, worker_id=w, max_points_per_file=20_000) for w in range(WORKERS)]
    for label, n in LABELS.items():
        points = label_points(label, n, rng)
        # Each block gets a slice; consecutive blocks overlap by a few points (duplicates).
        bounds = np.linspace(0, n, BLOCKS_PER_LABEL + 1).astype(int)
        for b in range(BLOCKS_PER_LABEL):
            lo, hi = bounds[b], bounds[b + 1]
            block = points[max(0, lo - 3):hi]
            if len(block) == 0:
                continue
            worker = (label + b) % WORKERS
            ingestors[worker].write(label=label, block_id=f"{b}_{label % 5}_0", points=block)
    for ingestor in ingestors:
        ingestor.finalize()
    Ingestor.consolidate_indexes(config)
    return config


def make_optimized(raw_path, path):
    """PoCADuck's optimized layout of the raw dataset's distinct points."""
    shutil.copytree(raw_path, path)
    raw = Query(StorageConfig(base_path=raw_path))
    labels = sorted(int(l) for l in raw.get_labels())
    out_dir = os.path.join(path, "optimized")
    os.makedirs(os.path.join(out_dir, "nested"), exist_ok=True)
    index = []
    for i, part in enumerate([labels[: len(labels) // 2], labels[len(labels) // 2 :]]):
        file_path = os.path.join(out_dir, "nested" if i else "", f"optimized_{i}.parquet")
        label_col, data_col = [], []
        for label in part:
            points = raw.get_points(label)
            label_col.extend([label] * len(points))
            data_col.extend(points.tolist())
            index.append((label, "optimized", file_path, len(points)))
        table = pa.table({"label": pa.array(label_col, pa.int64()), "data": pa.array(data_col, pa.list_(pa.int64()))})
        pq.write_table(table, file_path)
    raw.close()
    con = duckdb.connect(os.path.join(out_dir, "optimized_index.db"))
    con.execute("CREATE TABLE point_cloud_index (label UBIGINT, block_id VARCHAR, file_path VARCHAR, point_count UBIGINT)")
    con.executemany("INSERT INTO point_cloud_index VALUES (?, ?, ?, ?)", index)
    con.close()


def make_datasets(base):
    """Writes base/raw and base/optimized; returns their paths."""
    rng = np.random.default_rng(20250714)
    raw_path = os.path.join(base, "raw")
    opt_path = os.path.join(base, "optimized")
    make_raw(raw_path, rng)
    make_optimized(raw_path, opt_path)
    raw = Query(StorageConfig(base_path=raw_path))
    opt = Query(StorageConfig(base_path=opt_path))
    assert opt.using_optimized_data and not raw.using_optimized_data
    for label in LABELS:
        a, b = raw.get_points(label), opt.get_points(label)
        assert np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0)), label
    raw.close()
    opt.close()
    return raw_path, opt_path


if __name__ == "__main__":
    print(make_datasets(sys.argv[1]))
