"""Benchmark: reading a 1.3M-point label from VastDB, side by side in one run.

Builds the 64 nm sample (15M points; its neuron 722817260 has ~1.33M points), loads it with
`pocaduck-edge vastdb load` into a `vastdb-emulator` in both table layouts, and times, on the
same emulator and label:

- the official `vastdb` SDK 2.1.0: `table.select(...)` to an `N × 3` int64 numpy array
  (PoCADuck layout: the rows' lists joined and `np.unique(axis=0)`, as PoCADuck does);
- our `Query::get_points` (the library, in `pocaduck-edge bench-vastdb`);
- the proxy: `pocaduck-edge serve` over the table, the label fetched over loopback HTTP as
  Arrow in each answer shape (`shape=rows`, the default, and `shape=columns`, which passes a
  columnar table's columns through) and decoded to int64 (`pocaduck-edge bench-client`), and
  the same answers drained undecoded (what the proxy adds over the raw reply), and the
  server's peak RSS;
- the floor: the raw reply bytes of one signed query for the label, drained undecoded, which
  is also the emulator's own speed; and the proxy's floor: the raw replies of the very
  requests the proxy sends for the label (one per page of 131072 rows), sent one after
  another and drained undecoded;
- the proxy's CPU time per answer (user and system), over its drained runs; and the whole
  machine's (every process: the emulator, the proxy and the reader) per answer, for the
  drained answers and for the raw pages, which bounds what the proxy can add on this
  machine's cores: no schedule runs that CPU time in less than CPU / cores of wall time.
- the relay floor: the same raw pages read through `pocaduck-edge bench-relay`, a TCP relay
  that copies bytes both ways and does nothing else, which costs what any proxy must (one
  more process receiving and sending every byte);
- the columnar table's columns answer, drained, over the proxy's raw pages once more, in
  rounds of readings taken back to back (the raw pages, the relayed pages, the answer): the
  host's load drifts between the blocks above, and the rounds show how far the ratios move.

Medians of several runs after a warm-up; the machine is shared, so compare the ratios.
Run: npm run bench   (or: .venv/bin/python bench/vastdb_bench.py)
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

import ibis
import numpy as np
import vastdb

from measure import BIN, ROOT, TARGET, peak_rss_mb

EMULATOR = os.path.join(TARGET, "release", "vastdb-emulator")
NEURON = 722817260
REPEAT = 9
PAIRED_ROUNDS = 7
ACCESS, SECRET = "AKIABENCH", "bench-secret"
KEYS = {**os.environ, "VASTDB_ACCESS_KEY": ACCESS, "VASTDB_SECRET_KEY": SECRET}
LAYOUTS = ["columnar", "pocaduck"]
SHAPES = ["rows", "columns"]


def started(args, env=None):
    """Starts a process that prints `listening on URL` first; returns (process, URL)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on "), line
    return proc, line.removeprefix("listening on ")


def sdk_points(session, layout, label):
    """The label as an `N × 3` int64 array through the official SDK."""
    with session.transaction() as tx:
        table = tx.bucket("pocaduck").schema("bench").table(layout)
        predicate = table["label"] == ibis.literal(label, type="uint64")
        if layout == "columnar":
            result = table.select(columns=["x", "y", "z"], predicate=predicate).read_all()
            # int64, as PoCADuck returns (the loader stores int32 columns when values fit).
            points = np.empty((result.num_rows, 3), dtype=np.int64)
            for i, d in enumerate("xyz"):
                points[:, i] = result[d].to_numpy()
            return points
        result = table.select(columns=["points"], predicate=predicate).read_all()
        flat = result["points"].combine_chunks().flatten().to_numpy()
        return np.unique(flat.reshape(-1, 3), axis=0)


def cpu_seconds(pid):
    """A process's (user, system) CPU seconds so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def machine_busy_seconds():
    """CPU seconds the whole machine has spent busy since boot (every core), from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def bench_vastdb(endpoint, layout):
    """`pocaduck-edge bench-vastdb` on the label: `Query`, the raw reply and the proxy's raw pages."""
    out = subprocess.run(
        [BIN, "bench-vastdb", "--endpoint", endpoint, "--bucket", "pocaduck", "--schema", "bench",
         "--table", layout, "--layout", layout, "--repeat", str(REPEAT), str(NEURON)],
        check=True, capture_output=True, text=True, env=KEYS)
    return json.loads(out.stdout.splitlines()[0])


def bench_client(base, layout, shape, drain):
    """`pocaduck-edge bench-client` on the label through the proxy at `base`, in `shape`."""
    out = subprocess.run(
        [BIN, "bench-client", "--url", base, "--dataset", layout, "--repeat", str(REPEAT),
         "--query", f"shape={shape}", *(["--drain"] if drain else []), str(NEURON)],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[0])


def median_time(fn, repeat=REPEAT):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "pocaduck-edge", "-p", "vastdb-emulator"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="pocaduck-edge-bench-vastdb-")
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # hundreds of MB
    sample = os.path.join(work, "sample-64")
    subprocess.run([BIN, "sample", sample, "--voxel-nm", "64"], check=True, stderr=subprocess.DEVNULL)
    emulator, endpoint = started([EMULATOR, "--listen", "127.0.0.1:0", "--data", os.path.join(work, "emulator"),
                                  "--access-key", ACCESS, "--secret-key", SECRET])
    servers = []
    try:
        loads = {}
        for layout in LAYOUTS:
            t = time.perf_counter()
            subprocess.run([BIN, "vastdb", "load", sample, "--endpoint", endpoint, "--bucket", "pocaduck",
                            "--schema", "bench", "--table", layout, "--layout", layout],
                           check=True, env=KEYS, stderr=subprocess.DEVNULL)
            loads[layout] = time.perf_counter() - t
        total = json.load(open(os.path.join(sample, "manifest.json")))["point_count"]
        session = vastdb.connect(endpoint=endpoint, access=ACCESS, secret=SECRET)
        rows = []
        # Per round: the relayed pages and the columns answer over the raw pages, and the
        # answer over the relayed pages.
        paired = []
        relayed = None  # bench-vastdb's figures through the relay
        for layout in LAYOUTS:
            sdk_s, sdk = median_time(lambda: sdk_points(session, layout, NEURON))
            lib = bench_vastdb(endpoint, layout)
            server, base = started([BIN, "serve", "--addr", "127.0.0.1:0", "--vastdb-endpoint", endpoint,
                                    "--vastdb-bucket", "pocaduck", "--vastdb-schema", "bench",
                                    "--vastdb-table", layout, "--vastdb-layout", layout], env=KEYS)
            servers.append(server)
            before = peak_rss_mb(server.pid)
            proxy = {}
            for shape in SHAPES:
                for drain in (False, True):
                    cpu, busy = cpu_seconds(server.pid), machine_busy_seconds()
                    result = bench_client(base, layout, shape, drain)
                    # Per answer: the warm-up and the timed runs.
                    result["cpu"] = [(b - a) / (REPEAT + 1) for a, b in zip(cpu, cpu_seconds(server.pid))]
                    result["machine_cpu"] = (machine_busy_seconds() - busy) / (REPEAT + 1)
                    proxy[shape, drain] = result
                assert lib["points"] == proxy[shape, False]["points"] == len(sdk), (lib, proxy, len(sdk))
            rss = peak_rss_mb(server.pid)
            rows.append((layout, len(sdk), sdk_s, lib, proxy, before, rss))
            if layout == "columnar":
                relay, relay_url = started([BIN, "bench-relay", "--upstream", endpoint.removeprefix("http://")])
                servers.append(relay)
                relayed = bench_vastdb(relay_url, layout)
                # The host's load drifts between the blocks above: each round reads the raw
                # pages, the same pages through the relay, then the proxy's answer, at once.
                for _ in range(PAIRED_ROUNDS):
                    pages = bench_vastdb(endpoint, layout)["paged_seconds"]
                    through_relay = bench_vastdb(relay_url, layout)["paged_seconds"]
                    answer = bench_client(base, layout, "columns", True)["seconds"]
                    paired.append((through_relay / pages - 1, answer / pages - 1, answer / through_relay - 1))
    finally:
        for p in servers + [emulator]:
            p.kill()
            p.wait()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
          f"python {platform.python_version()}, vastdb {vastdb.__version__ if hasattr(vastdb, '__version__') else '2.1.0'}")
    print(f"table: the 64 nm sample, {total:,} points; label {NEURON}; medians of {REPEAT} runs\n")
    print("| layout | points | official SDK `select` → numpy | `Query::get_points` | speed-up | raw reply (floor) | raw pages of the proxy | machine CPU per reading of the raw pages | emulator | proxy peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for layout, n, sdk_s, lib, proxy, before, rss in rows:
        raw = lib["raw_seconds"]
        print(f"| {layout} | {n:,} | {sdk_s * 1e3:.0f} ms | {lib['query_seconds'] * 1e3:.0f} ms | **{sdk_s / lib['query_seconds']:.1f}×** "
              f"| {raw * 1e3:.1f} ms ({lib['raw_bytes'] / 1e6:.0f} MB) | {lib['paged_seconds'] * 1e3:.1f} ms ({lib['paged_requests']} request{'s' if lib['paged_requests'] != 1 else ''}) "
              f"| {lib['paged_machine_cpu_seconds'] * 1e3:.1f} ms "
              f"| {n / raw / 1e6:.0f} M points/s | {rss:.0f} MB (idle {before:.0f} MB) |")
    print()
    print("Through the proxy (loopback HTTP, Arrow), in each answer shape:\n")
    cores = os.cpu_count()
    print(f"| layout | shape | proxy HTTP → int64 | speed-up over the SDK | proxy, drained | over the raw reply | over its raw pages | proxy CPU per answer (user + system) | machine CPU per answer | its least wall time on {cores} cores (CPU / {cores}), over the raw pages |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for layout, n, sdk_s, lib, proxy, before, rss in rows:
        raw, paged = lib["raw_seconds"], lib["paged_seconds"]
        for shape in SHAPES:
            decoded, drained = proxy[shape, False], proxy[shape, True]
            user, system = drained["cpu"]
            least = drained["machine_cpu"] / cores
            print(f"| {layout} | {shape} | {decoded['seconds'] * 1e3:.0f} ms | **{sdk_s / decoded['seconds']:.1f}×** "
                  f"| {drained['seconds'] * 1e3:.1f} ms ({drained['bytes'] / 1e6:.0f} MB) "
                  f"| {100 * (drained['seconds'] / raw - 1):+.0f}% | {100 * (drained['seconds'] / paged - 1):+.0f}% "
                  f"| {user * 1e3:.1f} + {system * 1e3:.1f} ms | {drained['machine_cpu'] * 1e3:.1f} ms "
                  f"| {least * 1e3:.1f} ms, {100 * (least / paged - 1):+.0f}% |")
    print()
    direct = next(r[3] for r in rows if r[0] == "columnar")  # bench-vastdb's figures, direct
    paged = direct["paged_seconds"]
    print(f"- The relay floor: the columnar table's raw pages through `bench-relay` took "
          f"{relayed['paged_seconds'] * 1e3:.1f} ms ({100 * (relayed['paged_seconds'] / paged - 1):+.0f}% over "
          f"{paged * 1e3:.1f} ms direct), with {relayed['paged_machine_cpu_seconds'] * 1e3:.1f} ms of machine CPU "
          f"per reading (direct: {direct['paged_machine_cpu_seconds'] * 1e3:.1f} ms)")
    print(f"- In {PAIRED_ROUNDS} rounds of readings taken back to back (each the median of {REPEAT} runs), "
          "over the raw pages: the relayed pages, the columns answer drained; and the answer over the relayed pages:")
    for i, what in enumerate(["relayed pages over the raw pages", "columns answer over the raw pages",
                              "columns answer over the relayed pages"]):
        ratios = sorted(r[i] for r in paired)
        print(f"  - {what}: median {100 * ratios[len(ratios) // 2]:+.0f}% "
              f"({', '.join(f'{100 * r:+.0f}%' for r in ratios)})")
    for layout, seconds in loads.items():
        print(f"- `vastdb load`, {layout} layout: {total:,} points in {seconds:.1f} s ({total / seconds / 1e6:.1f} M points/s)")
    best = min(min(r[3]["query_seconds"], *(p["seconds"] for p in r[4].values() if p["points"])) for r in rows)
    n = rows[0][1]
    print(f"- PoCADuck's seed claim (< 1 s, > 100K points/s): {n:,} points in {best * 1e3:.0f} ms = {n / best / 1e6:.1f} M points/s")


if __name__ == "__main__":
    main()
