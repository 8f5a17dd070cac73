"""The scale benchmark: the hemibrain sample at its full 8 nm resolution.

Builds (once, under the user's cache directory) `pocaduck-edge sample --voxel-nm 8`: the five
neurons at ~70-90M points each plus their derived labels, about a billion points. Then, with
the real binary:

- bytes at rest per point;
- import: the biggest neuron written in PoCADuck's optimized layout (`label, data
  list<int64>`, one row per point), imported with `pocaduck-edge import`; seconds and peak RSS;
- streaming the whole biggest label from `pocaduck-edge serve` over loopback HTTP: as Parquet
  and as Arrow drained to /dev/null, and as Arrow decoded into an int64 array by
  `pocaduck-edge bench-client`; the server's peak RSS afterwards;
- a level-of-detail request (`limit=1000000`) on the same label as imported, which reads its
  coarse level (the cached sample may predate coarse levels; the import is always fresh).

Usage: `python bench/scale.py [--sample DIR]` (from `npm run bench:scale`).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import requests

from measure import BIN, peak_rss_mb, run_measured

LOD_POINTS = 1_000_000


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pocaduck-edge", "sample-8nm")


def dataset_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def write_optimized(sample, label, path):
    """The label's points in PoCADuck's optimized layout, a row group at a time."""
    os.makedirs(os.path.join(path, "optimized"))
    schema = pa.schema([("label", pa.int64()), ("data", pa.list_(pa.int64()))])
    rows = 0
    with pq.ParquetWriter(os.path.join(path, "optimized", "all.parquet"), schema) as out:
        for name in sorted(os.listdir(os.path.join(sample, "points"))):
            f = pq.ParquetFile(os.path.join(sample, "points", name))
            for g in range(f.num_row_groups):
                stats = f.metadata.row_group(g).column(0).statistics
                if stats is not None and stats.has_min_max and not (stats.min <= label <= stats.max):
                    continue
                t = f.read_row_group(g)
                t = t.filter(pc.equal(t.column("label"), pa.scalar(label, pa.uint64())))
                if t.num_rows == 0:
                    continue
                xyz = np.stack([t.column(d).to_numpy().astype(np.int64) for d in "xyz"], axis=1)
                data = pa.FixedSizeListArray.from_arrays(pa.array(xyz.reshape(-1)), 3).cast(pa.list_(pa.int64()))
                labels = pa.array(np.full(t.num_rows, label, dtype=np.int64))
                out.write_table(pa.table({"label": labels, "data": data}, schema=schema))
                rows += t.num_rows
    return rows


def timed_get(url, repeat=3):
    """Median seconds and bytes of draining a GET with curl, and its Server-Timing header."""
    times, size, timing = [], 0, ""
    for _ in range(repeat):
        done = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "-w", "%{time_total} %{size_download}\n", url], check=True, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        seconds, size = lines[-1].split()
        times.append(float(seconds))
        size = int(size)
        timing = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("server-timing:")), "")
    times.sort()
    return times[len(times) // 2], size, timing


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sample", default=cache_dir())
    opts = args.parse_args()
    sample = os.path.join(opts.sample, "hemibrain-da1")
    if not os.path.exists(os.path.join(sample, "manifest.json")):
        os.makedirs(opts.sample, exist_ok=True)
        build_s, build_rss = run_measured([BIN, "sample", sample, "--voxel-nm", "8"])
        print(f"built the 8 nm sample in {build_s:.0f} s, peak RSS {build_rss:.0f} MB", flush=True)
    manifest = json.load(open(os.path.join(sample, "manifest.json")))
    total = manifest["point_count"]
    at_rest = dataset_bytes(sample)

    server = subprocess.Popen([BIN, "serve", "--data", sample, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    base = server.stdout.readline().strip().removeprefix("listening on ")
    api = f"{base}/v1/datasets/hemibrain-da1"
    try:
        idle_rss = peak_rss_mb(server.pid)
        labels = requests.get(f"{api}/labels?limit=1000", timeout=60).json()["labels"]
        counts = {int(l): requests.get(f"{api}/labels/{l}", timeout=60).json()["point_count"] for l in labels}
        big = max(counts, key=counts.get)
        n = counts[big]
        parquet_s, parquet_bytes, parquet_timing = timed_get(f"{api}/labels/{big}/points?format=parquet")
        arrow_s, arrow_bytes, _ = timed_get(f"{api}/labels/{big}/points?format=arrow")
        client = subprocess.run([BIN, "bench-client", "--url", base, "--dataset", "hemibrain-da1", "--repeat", "3", str(big)], check=True, capture_output=True, text=True)
        decoded = json.loads(client.stdout.splitlines()[-1])
        assert decoded["points"] == n, decoded
        serve_rss = peak_rss_mb(server.pid)
    finally:
        server.kill()

    with tempfile.TemporaryDirectory() as work:
        opt = os.path.join(work, "pocaduck")
        rows = write_optimized(sample, big, opt)
        edge = os.path.join(work, "edge")
        import_s, import_rss = run_measured([BIN, "import", opt, edge])
        imported = json.load(open(os.path.join(edge, "manifest.json")))
        coarse_bytes = sum(f["size"] for f in imported.get("coarse", []))
        edge_bytes = dataset_bytes(edge)
        server = subprocess.Popen([BIN, "serve", "--data", edge, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        base = server.stdout.readline().strip().removeprefix("listening on ")
        try:
            lod = subprocess.run([BIN, "bench-client", "--url", base, "--dataset", "edge", "--repeat", "5", "--query", f"limit={LOD_POINTS}", str(big)], check=True, capture_output=True, text=True)
            lod = json.loads(lod.stdout.splitlines()[-1])
            assert lod["points"] == LOD_POINTS, lod
        finally:
            server.kill()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; python {platform.python_version()}\n")
    print(f"| measure | result |")
    print(f"|---|---|")
    print(f"| the 8 nm sample | {total:,} points in {len(counts)} labels, {at_rest / 1e6:.0f} MB: {at_rest / total:.2f} B/point at rest |")
    print(f"| import of label {big} ({rows:,} rows, PoCADuck optimized layout) | {import_s:.1f} s, {rows / import_s / 1e6:.1f} M points/s, peak RSS {import_rss:.0f} MB |")
    print(f"| whole label {big} ({n:,} points) as Parquet, drained | {parquet_s:.2f} s, {n / parquet_s / 1e6:.0f} M points/s, {parquet_bytes / n:.2f} B/point ({parquet_timing}) |")
    print(f"| the same as Arrow, drained | {arrow_s:.2f} s, {n / arrow_s / 1e6:.0f} M points/s, {arrow_bytes / n:.1f} B/point |")
    print(f"| the same as Arrow, decoded into int64 by bench-client | {decoded['seconds']:.2f} s, {n / decoded['seconds'] / 1e6:.0f} M points/s |")
    print(f"| server peak RSS | {serve_rss:.0f} MB after all of the above (idle {idle_rss:.0f} MB; the label is {n * 24 / 1e6:.0f} MB as int64) |")
    print(f"| the imported label at rest | {edge_bytes / 1e6:.0f} MB, {edge_bytes / imported['point_count']:.2f} B/point, of which its coarse level {coarse_bytes / 1e6:.1f} MB |")
    print(f"| `limit={LOD_POINTS}` on the imported label | {lod['seconds'] * 1e3:.0f} ms end to end, server {lod['server_ms']:.0f} ms |")


if __name__ == "__main__":
    sys.exit(main())
