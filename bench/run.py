"""Benchmark: pocaduck-edge against the real PoCADuck 0.1.1, side by side in one run.

Builds labels of about 3K, 30K, 300K and 1.3M points (one real hemibrain neuron voxelised at
four sizes by `pocaduck-edge sample`), ingests them with PoCADuck's own Ingestor (several
workers and blocks), writes PoCADuck's optimized layout, imports that with
`pocaduck-edge import`, serves it, and times:

- get_points: PoCADuck `Query.get_points` (warm: the index is open, the label cache off)
  against our server over loopback HTTP, Arrow format in each answer shape (rows, the
  default, and `shape=columns`), decoded into an int64 array by a Rust client
  (`pocaduck-edge bench-client`); medians of several runs, reported as a ratio;
- bytes at rest per point and bytes on the wire per returned point (Parquet format), on
  these labels and on every label of the bundled sample (`pocaduck-edge sample`);
- import throughput and peak memory against PoCADuck's ingest (+ writing its optimized
  layout), each in its own process, peak RSS from /usr/bin/time; and our import alone on a
  larger optimized layout (the whole 64 nm sample, ~15M points).

Run: npm run bench   (or: .venv/bin/python bench/run.py)
"""

import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import requests

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from pocaduck import Ingestor, Query, StorageConfig  # noqa: E402
from pocaduck_fixture import make_optimized  # noqa: E402

from measure import BIN, ROOT, run_measured  # noqa: E402

NEURON = 722817260
# Voxel size (nm) -> the label it becomes; sizes chosen for ~1.3M, 300K, 30K and 3K points.
SIZES = {64: 1_300_001, 132: 300_001, 420: 30_001, 1320: 3_001}
REPEAT = 5


def neuron_points(work, voxel_nm):
    out = os.path.join(work, f"sample-{voxel_nm}")
    subprocess.run([BIN, "sample", out, "--voxel-nm", str(voxel_nm)], check=True, stderr=subprocess.DEVNULL)
    table = pq.read_table(os.path.join(out, "points"))
    mine = table.column("label").to_numpy() == np.uint64(NEURON)
    return np.stack([table.column(d).to_numpy()[mine].astype(np.int64) for d in "xyz"], axis=1)


def ingest_pocaduck(path, labels):
    """PoCADuck ingest (2 workers, 8 blocks per label by x) in this process: seconds."""
    config = StorageConfig(base_path=path)
    started = time.perf_counter()
    workers = [Ingestor(config, worker_id=w) for w in range(2)]
    for label, points in labels.items():
        edges = np.linspace(points[:, 0].min(), points[:, 0].max() + 1, 9)
        for b in range(8):
            block = points[(points[:, 0] >= edges[b]) & (points[:, 0] < edges[b + 1])]
            if len(block):
                workers[b % 2].write(label=label, block_id=f"{b}_0_0", points=block)
    for w in workers:
        w.finalize()
    Ingestor.consolidate_indexes(config)
    return time.perf_counter() - started


def optimized_from_sample(sample, path):
    """PoCADuck's optimized layout (`label, data list<int64>`) of a whole edge dataset."""
    table = pq.read_table(os.path.join(sample, "points"))
    xyz = np.stack([table.column(d).to_numpy().astype(np.int64) for d in "xyz"], axis=1)
    data = pa.FixedSizeListArray.from_arrays(pa.array(xyz.reshape(-1)), 3).cast(pa.list_(pa.int64()))
    os.makedirs(os.path.join(path, "optimized"))
    labels = pa.array(table.column("label").to_numpy().astype(np.int64))
    pq.write_table(pa.table({"label": labels, "data": data}), os.path.join(path, "optimized", "all.parquet"))
    return len(xyz)


def dir_bytes(path, suffix=""):
    """Bytes of the files under `path` whose names end with `suffix`."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs if f.endswith(suffix))


def sample_parquet_answers(base):
    """(points, bytes) of the Parquet answer of every label of the served bundled sample."""
    url = f"{base}/v1/datasets/sample"
    labels = requests.get(f"{url}/labels", params={"limit": 10000}, timeout=60).json()["labels"]
    answers = []
    for label in labels:
        count = requests.get(f"{url}/labels/{label}", timeout=60).json()["point_count"]
        body = requests.get(f"{url}/labels/{label}/points", params={"format": "parquet"}, timeout=60).content
        answers.append((count, len(body)))
    return answers


def main():
    if sys.argv[1:2] == ["pocaduck-ingest"]:
        _, _, raw, opt, npz = sys.argv
        labels = {int(k): v for k, v in np.load(npz).items()}
        ingest_pocaduck(raw, labels)
        make_optimized(raw, opt)
        return
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "pocaduck-edge"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="pocaduck-edge-bench-")
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # hundreds of MB
    labels = {label: neuron_points(work, nm) for nm, label in SIZES.items()}
    total = sum(len(p) for p in labels.values())

    npz = os.path.join(work, "labels.npz")
    np.savez(npz, **{str(k): v for k, v in labels.items()})
    raw, opt = os.path.join(work, "pocaduck-raw"), os.path.join(work, "pocaduck")
    pocaduck_s, pocaduck_rss = run_measured([sys.executable, __file__, "pocaduck-ingest", raw, opt, npz])

    edge = os.path.join(work, "edge")
    import_s, import_rss = run_measured([BIN, "import", opt, edge])
    big = os.path.join(work, "pocaduck-big")
    big_points = optimized_from_sample(os.path.join(work, "sample-64"), big)
    big_s, big_rss = run_measured([BIN, "import", big, os.path.join(work, "edge-big")])
    rest_bytes = dir_bytes(edge)
    sample = os.path.join(work, "sample")  # the bundled sample, as `npm start` serves it
    subprocess.run([BIN, "sample", sample], check=True, stderr=subprocess.DEVNULL)

    server = subprocess.Popen([BIN, "serve", "--data", edge, "--data", sample, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip().removeprefix("listening on ")
    rows = []
    try:
        ours, columns = ({
            int(m["label"]): m
            for m in map(json.loads, subprocess.run(
                [BIN, "bench-client", "--url", base, "--dataset", "edge", "--repeat", str(REPEAT),
                 "--query", f"shape={shape}", *map(str, labels)],
                check=True, capture_output=True, text=True,
            ).stdout.splitlines())
        } for shape in ("rows", "columns"))
        query = Query(StorageConfig(base_path=opt))
        for label, points in labels.items():
            query.get_points(label, use_cache=False)  # warm-up
            times = []
            for _ in range(REPEAT):
                started = time.perf_counter()
                got = query.get_points(label, use_cache=False)
                times.append(time.perf_counter() - started)
            assert len(got) == len(points) == ours[label]["points"] == columns[label]["points"], label
            wire = requests.get(f"{base}/v1/datasets/edge/labels/{label}/points?format=parquet", timeout=60).content
            theirs = statistics.median(times)
            rows.append((label, len(points), theirs, ours[label], columns[label], len(wire) / len(points)))
        query.close()
        sample_wire = sample_parquet_answers(base)
    finally:
        server.kill()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; python {platform.python_version()}")
    print(f"points: {total:,} in {len(labels)} labels; medians of {REPEAT} runs\n")
    print("| label points | PoCADuck get_points | pocaduck-edge (HTTP, Arrow rows → int64) | speed-up | server time | Arrow `shape=columns` → int64 | speed-up | server time | wire (parquet) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, n, theirs, rows_m, columns_m, wire in rows:
        print(f"| {n:,} | {theirs * 1e3:.1f} ms | {rows_m['seconds'] * 1e3:.2f} ms | **{theirs / rows_m['seconds']:.0f}×** | {rows_m['server_ms']:.2f} ms "
              f"| {columns_m['seconds'] * 1e3:.2f} ms | **{theirs / columns_m['seconds']:.0f}×** | {columns_m['server_ms']:.2f} ms | {wire:.2f} B/pt |")
    print()
    print(f"| at rest | pocaduck-edge {rest_bytes / total:.2f} B/point | PoCADuck raw layout {dir_bytes(raw, '.parquet') / total:.2f} B/point, "
          f"optimized layout {dir_bytes(os.path.join(opt, 'optimized'), '.parquet') / total:.2f} B/point |")
    print(f"| import, {total:,} points | pocaduck-edge {import_s:.2f} s ({total / import_s / 1e6:.2f} M points/s), peak {import_rss:.0f} MB "
          f"| PoCADuck ingest + optimized layout {pocaduck_s:.1f} s ({total / pocaduck_s / 1e6:.3f} M points/s), peak {pocaduck_rss:.0f} MB "
          f"| ratio {pocaduck_s / import_s:.0f}× |")
    sample_points = sum(n for n, _ in sample_wire)
    sample_rest = dir_bytes(sample)
    per_label = [size / n for n, size in sample_wire]
    print(f"| the bundled sample, {len(sample_wire)} labels, {sample_points:,} points | at rest {sample_rest / sample_points:.3f} B/point "
          f"| on the wire, each label's Parquet answer: {min(per_label):.3f} to {max(per_label):.3f} B/point "
          f"(all of them {sum(s for _, s in sample_wire) / sample_points:.3f}) |")
    print(f"| import, {big_points:,} points (optimized layout) | pocaduck-edge {big_s:.2f} s ({big_points / big_s / 1e6:.2f} M points/s), peak {big_rss:.0f} MB |")


if __name__ == "__main__":
    main()
