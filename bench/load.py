"""The load benchmark: `pocaduck-edge serve` under many clients, beside nginx, on loopback.

Serves the bundled sample (`pocaduck-edge sample`) with the release binary, and the same
files with Debian's nginx, each on 127.0.0.1. wrk (Debian's) drives each scenario at 1, 8, 64
and 512 connections for a fixed time and reports requests/s, p50 and p99 latency and errors;
the server's RSS is sampled all along. The scenarios:

- `range`: 64 KiB `Range` reads at random offsets of the sample's largest Parquet file, through
  `/v1/datasets/{ds}/files/…`, and the same reads of the same file from nginx: the ratio is
  the target (`/files` range throughput ≥ 80% of nginx's);
- `small`, `large`: a small label's and the largest label's points, as Arrow;
- `listing`: `GET /v1/datasets`;
- `mixed`: each request picks one of the above (range 50%, small 30%, listing 15%, large 5%).

Then a soak (the mixed scenario at 64 connections for `--soak-seconds`, default 600): errors,
the server's RSS after the first minute against its RSS at the end, its idle RSS (5 s without
requests) before and after, and the maximum RSS of each tenth of the soak. Then slowloris:
`--slowloris` connections (default 2,000) each trickle a header line every second and never
finish their request; the server must close each within its header-read timeout, and a normal
request made meanwhile must answer in under 1 s.

Run: `npm run bench:load` (or `.venv/bin/python bench/load.py --help`). Prints the tables of
bench/README.md.
"""

import argparse
import asyncio
import collections
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from measure import BIN

DATASET = "sample"
RANGE_BYTES = 64 * 1024
CLIENTS = [1, 8, 64, 512]


def start_server(sample, log):
    """`pocaduck-edge serve` on a free loopback port, its failures logged to the file
    `log`: (process, base URL)."""
    server = subprocess.Popen(
        [BIN, "serve", "--data", sample, "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "RUST_LOG": "warn"},
        text=True,
    )
    line = server.stdout.readline()
    match = re.match(r"listening on (http://\S+)", line)
    if not match:
        server.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return server, match.group(1)


def start_nginx(root, work):
    """nginx serving `root` on a free loopback port: (process, base URL)."""
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            # As root, nginx's workers would read as `nobody`: keep the caller's user.
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"""worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""
        )
    nginx = subprocess.Popen(["nginx", "-c", conf, "-p", work], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/manifest.json")
    return nginx, url


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                r.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def get_json(url):
    import json

    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


class RssSampler:
    """Samples a process's RSS (MB) every `every` seconds in a thread, with the time."""

    def __init__(self, pid, every=0.5):
        self.pid, self.every = pid, every
        self.samples = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def rss(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def run(self):
        started = time.monotonic()
        while not self.stopped.wait(self.every):
            try:
                self.samples.append((time.monotonic() - started, self.rss()))
            except OSError:
                return

    def between(self, start, end):
        """RSS samples taken in [start, end) seconds."""
        return [mb for t, mb in self.samples if start <= t < end]

    def now(self):
        return self.samples[-1][0] if self.samples else 0.0

    def stop(self):
        self.stopped.set()
        self.thread.join()


def lua_script(work, name, requests):
    """A wrk script choosing among `requests` [(weight, path, range file size or None)]."""
    lines = ["local choices = {"]
    for weight, path, size in requests:
        lines.append(f'  {{ {weight}, "{path}", {size or 0} }},')
    lines += [
        "}",
        "local total = 0",
        "for _, c in ipairs(choices) do total = total + c[1] end",
        f"local span = {RANGE_BYTES}",
        "request = function()",
        "  local pick = math.random() * total",
        "  local c = choices[#choices]",
        "  for _, candidate in ipairs(choices) do",
        "    if pick < candidate[1] then c = candidate break end",
        "    pick = pick - candidate[1]",
        "  end",
        "  local headers = {}",
        "  if c[3] > 0 then",
        "    local start = math.random(0, c[3] - span)",
        '    headers["Range"] = "bytes=" .. start .. "-" .. (start + span - 1)',
        "  end",
        '  return wrk.format("GET", c[2], headers)',
        "end",
        # No `response` callback: wrk counts the answers of status 400 and over itself, and
        # a callback has it copy every body into Lua (a large answer's 21 MB at 64
        # connections makes wrk, not the server, the bottleneck).
    ]
    path = os.path.join(work, f"{name}.lua")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_wrk(url, script, clients, seconds):
    """One wrk run: requests/s, p50 and p99 (ms), errors (non-2xx, socket errors)."""
    threads = min(2, clients)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s", "--latency", "-s", script, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = latency_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = latency_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    kinds = {}
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        kinds["non-2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        kinds.update(zip(["connect", "read", "write", "timeout"], map(int, m.groups())))
    errors = sum(kinds.values())
    kinds = ", ".join(f"{kind} {n}" for kind, n in kinds.items() if n)
    transfer = re.search(r"Transfer/sec:\s+(\S+)", out).group(1)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors, "error_kinds": kinds, "transfer": transfer}


def errors_cell(result):
    """The errors of a run, with their kinds when there are any."""
    return f"{result['errors']} ({result['error_kinds']})" if result["errors"] else "0"


def rate(rps):
    """Requests/s as the table shows them: whole numbers, but one decimal below 100."""
    return f"{rps:,.0f}" if rps >= 100 else f"{rps:.1f}"


def latency_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


async def slowloris(host, port, connections, trickle_s, give_up_s, probe_url):
    """Opens `connections` that trickle header lines and never end their request; returns
    (closed by the server, seconds until the last was closed or None, the slowest normal
    request meanwhile in ms, normal requests made)."""
    closed_at = []
    started = time.monotonic()

    async def one(i):
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            return
        try:
            writer.write(f"GET /v1/datasets HTTP/1.1\r\nHost: {host}\r\n".encode())
            await writer.drain()
            while time.monotonic() - started < give_up_s:
                try:
                    data = await asyncio.wait_for(reader.read(1024), trickle_s)
                    if not data:
                        closed_at.append(time.monotonic() - started)
                        return
                except asyncio.TimeoutError:
                    writer.write(f"X-Trickle-{i}: x\r\n".encode())
                    try:
                        await writer.drain()
                    except OSError:
                        closed_at.append(time.monotonic() - started)
                        return
        except OSError:
            closed_at.append(time.monotonic() - started)
        finally:
            writer.close()

    async def probe():
        worst, made = 0.0, 0
        while time.monotonic() - started < give_up_s and len(closed_at) < connections:
            t = time.monotonic()
            await asyncio.to_thread(lambda: urllib.request.urlopen(probe_url, timeout=5).read())
            worst, made = max(worst, (time.monotonic() - t) * 1e3), made + 1
            await asyncio.sleep(0.2)
        return worst, made

    tasks = [asyncio.create_task(one(i)) for i in range(connections)]
    worst, made = await probe()
    await asyncio.gather(*tasks)
    last = max(closed_at) if len(closed_at) == connections else None
    return len(closed_at), last, worst, made


def idle_rss(rss, settle=5.0):
    """The server's RSS (MB) once it has had `settle` seconds without requests: the mean of
    the last second's samples."""
    time.sleep(settle)
    now = rss.now()
    samples = rss.between(now - 1, now + 1) or [rss.rss()]
    return sum(samples) / len(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="seconds per scenario and client count")
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)), help="connection counts")
    parser.add_argument("--soak-seconds", type=int, default=600, help="the soak's length (0: no soak)")
    parser.add_argument("--slowloris", type=int, default=2000, help="slowloris connections (0: none)")
    parser.add_argument("--sample", help="a sample built by `pocaduck-edge sample` (else one is built)")
    parser.add_argument("--header-timeout", type=float, default=10.0, help="the server's header-read timeout, seconds")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    for tool in ["wrk", "nginx"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: scripts/bench-load.sh installs it (apt)")
    # Slowloris's connections, and the server's, which inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.slowloris + 1024)), hard))

    work = tempfile.mkdtemp(prefix="pocaduck-edge-load-")
    try:
        sample = os.path.join(work, DATASET)
        if args.sample:
            os.symlink(os.path.abspath(args.sample), sample)
        else:
            subprocess.run([BIN, "sample", sample], check=True, stderr=subprocess.DEVNULL)
        log_path = os.path.join(work, "server.log")
        log = open(log_path, "w")
        server, base = start_server(sample, log)
        nginx, nginx_base = start_nginx(sample, work)
        try:
            run_all(args, clients, work, sample, server, base, nginx_base)
        finally:
            server.terminate()
            nginx.terminate()
            server.wait(10)
            nginx.wait(10)
            log.close()
            print_failures(log_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_failures(log_path):
    """The failures the server logged during the whole run, by API code."""
    with open(log_path) as f:
        codes = collections.Counter(m.group(1) for line in f if (m := re.search(r"\bcode=(\w+)", line)))
    summary = ", ".join(f"{code} {n}" for code, n in codes.most_common()) or "none"
    print(f"\nFailures the server logged over the whole run: {summary}.")


def run_all(args, clients, work, sample, server, base, nginx_base):
    api = f"/v1/datasets/{DATASET}"
    labels = get_json(base + api + "/labels?limit=10000")["labels"]
    counts = {l: get_json(f"{base}{api}/labels/{l}")["point_count"] for l in labels}
    small = min(labels, key=lambda l: counts[l])
    large = max(labels, key=lambda l: counts[l])
    points_dir = os.path.join(sample, "points")
    biggest = max(os.listdir(points_dir), key=lambda f: os.path.getsize(os.path.join(points_dir, f)))
    size = os.path.getsize(os.path.join(points_dir, biggest))
    scenarios = {
        "range": [(1, f"{api}/files/points/{biggest}", size)],
        "small": [(1, f"{api}/labels/{small}/points?format=arrow", None)],
        "large": [(1, f"{api}/labels/{large}/points?format=arrow", None)],
        "listing": [(1, "/v1/datasets", None)],
    }
    scenarios["mixed"] = [(50, *scenarios["range"][0][1:]), (30, *scenarios["small"][0][1:]), (15, *scenarios["listing"][0][1:]), (5, *scenarios["large"][0][1:])]
    nginx_range = lua_script(work, "nginx-range", [(1, f"/points/{biggest}", size)])
    scripts = {name: lua_script(work, name, requests) for name, requests in scenarios.items()}

    print(f"# load: {DATASET} ({len(labels)} labels), small label {small} ({counts[small]:,} points), "
          f"large label {large} ({counts[large]:,} points), ranges of {RANGE_BYTES // 1024} KiB in "
          f"{biggest} ({size:,} B); {args.seconds} s per cell; wrk with 2 threads (1 for 1 connection)\n")
    rss = RssSampler(server.pid)
    print("| scenario | connections | requests/s | p50 ms | p99 ms | errors | transfer/s | server RSS MB (max) | nginx requests/s | ratio to nginx |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, script in scripts.items():
        for c in clients:
            began = rss.now()
            ours = run_wrk(base, script, c, args.seconds)
            peak = max(rss.between(began, rss.now() + 1) or [rss.rss()])
            theirs, ratio = "", ""
            if name == "range":
                n = run_wrk(nginx_base, nginx_range, c, args.seconds)
                theirs = rate(n["rps"]) + (f" ({n['errors']} errors)" if n["errors"] else "")
                ratio = f"**{ours['rps'] / n['rps']:.0%}**"
            print(f"| {name} | {c} | {rate(ours['rps'])} | {ours['p50']:.2f} | {ours['p99']:.2f} | {errors_cell(ours)} | {ours['transfer']} | {peak:.0f} | {theirs} | {ratio} |", flush=True)

    if args.soak_seconds:
        # Idle RSS before and after: what the server keeps between answers. Answers in
        # flight come and go during the soak, so the samples taken under load swing with
        # them; a leak shows in the idle figures, and in a rising series of maxima.
        idle_before = idle_rss(rss)
        began = rss.now()
        soak = run_wrk(base, scripts["mixed"], 64, args.soak_seconds)
        first = rss.between(began + 50, began + 60) or rss.between(began, began + 60)
        last = rss.between(began + args.soak_seconds - 10, began + args.soak_seconds + 1)
        one_minute, end = sum(first) / len(first), sum(last) / len(last)
        idle_after = idle_rss(rss)
        print(f"\n| soak | requests/s | p50 ms | p99 ms | errors | RSS after 1 min | RSS at the end | change | idle RSS before | idle RSS after | idle change |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| mixed, 64 connections, {args.soak_seconds} s | {rate(soak['rps'])} | {soak['p50']:.2f} | {soak['p99']:.2f} | {errors_cell(soak)} | {one_minute:.0f} MB | {end:.0f} MB | {end / one_minute - 1:+.1%} | {idle_before:.0f} MB | {idle_after:.0f} MB | {idle_after / idle_before - 1:+.1%} |", flush=True)
        tenth = args.soak_seconds / 10
        maxima = [max(rss.between(began + i * tenth, began + (i + 1) * tenth) or [0]) for i in range(10)]
        print(f"\nRSS under load, the maximum of each tenth of the soak (MB): {', '.join(f'{m:.0f}' for m in maxima)}.", flush=True)
    rss.stop()

    if args.slowloris:
        host, port = base.removeprefix("http://").rsplit(":", 1)
        give_up = args.header_timeout * 3 + 10
        closed, last, worst, made = asyncio.run(slowloris(host, int(port), args.slowloris, 1.0, give_up, base + "/v1/datasets"))
        print("\n| slowloris connections | closed by the server | the last closed after | header-read timeout | slowest normal request meanwhile | normal requests |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {args.slowloris:,} | {closed:,} | {'%.1f s' % last if last is not None else f'not within {give_up:.0f} s'} | {args.header_timeout:.0f} s | {worst:.0f} ms | {made} |")


if __name__ == "__main__":
    main()
