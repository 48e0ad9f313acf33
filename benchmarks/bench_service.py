"""Latency and throughput of POST /solve over HTTP with 50 concurrent clients.

    python benchmarks/bench_service.py [--clients 50] [--requests 40] [--workers 1]

Starts real servers (``mlsysim-opt serve`` on 127.0.0.1, a free port), one per HTTP stack: the
default (httptools parser, uvloop event loop) and the pure-Python one (h11, asyncio), and measures
each the same ways, in one run:

* one client, one request at a time (the floor: the HTTP round trip plus the solve);
* 50 concurrent keep-alive connections from a minimal asyncio HTTP/1.1 client, closed loop (each
  sends its next request when the previous answer arrives): what the server sustains;
* (default stack only) 50 concurrent httpx clients (one thread each), closed loop: what a Python
  client sees. httpx spends more CPU per request than the server does, so on a small machine this
  measures the clients as much as the server.

Then, on one default-stack server with two worker processes, sustained load for ``--seconds``
(20) from 50 connections, each sending a request every ``--interval`` (50 ms, so about 1,000
requests/s offered; a late request goes at once):

* ``POST /solve`` with no jobs running;
* ``POST /solve`` while a job mix runs (sleep jobs, and 30,000-point sweep jobs whose results go
  through the job store);
* ``GET /jobs/{id}`` of those jobs while the mix runs.

Prints tables and writes benchmarks/results/service.md and service.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from mlsysim_opt.service.local import LocalServer  # noqa: E402

BODY = {"model": "Llama3_8B", "hardware": "H100", "batch_size": 8, "precision": "fp16"}


def summarize(name: str, latencies: list[float], elapsed: float) -> dict:
    ordered = sorted(latencies)
    return {"mode": name, "requests": len(ordered), "median_ms": statistics.median(ordered) * 1e3,
            "p99_ms": ordered[max(0, int(0.99 * len(ordered)) - 1)] * 1e3, "throughput": len(ordered) / elapsed}


def sequential(url: str, n: int) -> dict:
    import httpx
    with httpx.Client(base_url=url) as client:
        for _ in range(20):
            client.post("/solve", json=BODY)
        latencies = []
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            client.post("/solve", json=BODY).raise_for_status()
            latencies.append(time.perf_counter() - t0)
    return summarize("1 client (httpx), sequential", latencies, time.perf_counter() - start)


def raw_concurrent(port: int, clients: int, per_client: int) -> dict:
    payload = json.dumps(BODY).encode()
    request = (b"POST /solve HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(payload)) + payload

    async def client(latencies):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(per_client):
            t0 = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode(errors="replace"))
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
        writer.close()

    async def run():
        latencies = []
        start = time.perf_counter()
        await asyncio.gather(*(client(latencies) for _ in range(clients)))
        return latencies, time.perf_counter() - start

    latencies, elapsed = asyncio.run(run())
    return summarize(f"{clients} connections (asyncio HTTP/1.1)", latencies, elapsed)


def httpx_concurrent(url: str, clients: int, per_client: int) -> dict:
    import httpx
    latencies, lock = [], threading.Lock()

    def client():
        with httpx.Client(base_url=url) as c:
            for _ in range(per_client):
                t0 = time.perf_counter()
                c.post("/solve", json=BODY).raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarize(f"{clients} httpx clients (threads)", latencies, time.perf_counter() - start)


def _request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def sustained(port: int, name: str, next_request, clients: int, seconds: float, interval: float) -> dict:
    """``clients`` keep-alive connections, each sending ``next_request()`` every ``interval``
    seconds for ``seconds`` (open loop: a request that is due goes at once, however late the
    previous answer was). Latency is measured from the moment the request was sent."""

    async def client(latencies, statuses, offset):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.perf_counter() + offset
        end, k = start + seconds, 0
        while (due := start + k * interval) < end:
            k += 1
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            t0 = time.perf_counter()
            writer.write(next_request())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            statuses.append(int(head.split(b" ", 2)[1]))
        writer.close()

    async def run():
        latencies, statuses = [], []
        start = time.perf_counter()
        await asyncio.gather(*(client(latencies, statuses, interval * i / clients) for i in range(clients)))
        return latencies, statuses, time.perf_counter() - start

    latencies, statuses, elapsed = asyncio.run(run())
    bad = sorted({s for s in statuses if s != 200})
    if bad:
        raise RuntimeError(f"{name}: answers with status {bad}")
    return summarize(name, latencies, elapsed)


SLEEP_JOB = {"kind": "sleep", "params": {"seconds": 1.0}}
SWEEP_JOB = {"kind": "sweep", "params": {"model": "Llama3_70B", "hardware_list": ["H100", "B200", "A100"],
                                         "seq_lens": [1024]}}


class JobMix:
    """Keeps ``in_flight`` jobs submitted (sleep and 30,000-point sweep jobs in turn, each distinct so
    the cache never answers) until stopped; their ids feed the ``GET /jobs/{id}`` load."""

    def __init__(self, url: str, in_flight: int = 4):
        self.url, self.in_flight = url, in_flight
        self.ids: list[str] = []
        self.finished = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _job(self, n: int) -> dict:
        if n % 2:
            return {**SLEEP_JOB, "params": {**SLEEP_JOB["params"], "tag": f"mix-{n}-{time.time()}"}}
        first = 1 + n % 1000
        return {**SWEEP_JOB, "params": {**SWEEP_JOB["params"], "batch_sizes": list(range(first, first + 10_000))}}

    def _run(self) -> None:
        import httpx
        live, n = [], 0
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stop.is_set():
                while len(live) < self.in_flight:
                    job = client.post("/jobs", json=self._job(n)).json()
                    n += 1
                    live.append(job["id"])
                    self.ids.append(job["id"])
                for job_id in list(live):
                    if client.get(f"/jobs/{job_id}").json()["status"] not in ("queued", "running"):
                        live.remove(job_id)
                        self.finished += 1
                time.sleep(0.2)

    def __enter__(self) -> "JobMix":
        self._thread.start()
        while len(self.ids) < self.in_flight:
            time.sleep(0.05)
        time.sleep(1.0)   # the first jobs are running
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def under_load(args) -> list[dict]:
    solve = _request("POST", "/solve", json.dumps(BODY).encode())
    load = dict(clients=args.clients, seconds=args.seconds, interval=args.interval)
    rows = []
    with LocalServer(workers=2, test_jobs=True, job_timeout=120) as server:
        sustained(server.port, "warm-up", lambda: solve, args.clients, 2.0, args.interval)
        rows.append(sustained(server.port, "POST /solve, no jobs", lambda: solve, **load))
        with JobMix(server.url) as mix:
            rows.append(sustained(server.port, "POST /solve, job mix running", lambda: solve, **load))
            count = iter(range(10**9))

            def recent_job():   # one of the 20 newest jobs, in turn
                ids = mix.ids[-20:]
                return _request("GET", f"/jobs/{ids[next(count) % len(ids)]}")

            rows.append(sustained(server.port, "GET /jobs/{id}, job mix running", recent_job, **load))
        rows[-1]["jobs_finished"] = rows[-2]["jobs_finished"] = mix.finished
    return rows


def compare_stacks(args) -> tuple[list[dict], str]:
    stacks = [("httptools + uvloop (default)", ("--http", "httptools", "--loop", "uvloop")),
              ("h11 + asyncio", ("--http", "h11", "--loop", "asyncio"))]
    rows = []
    for stack, flags in stacks:
        with LocalServer(workers=args.workers, extra_args=flags) as server:
            measured = [sequential(server.url, 500), raw_concurrent(server.port, args.clients, args.requests)]
            if stack == stacks[0][0]:
                measured.append(httpx_concurrent(server.url, args.clients, args.requests))
        rows += [{"stack": stack, **r} for r in measured]
    concurrent = {r["stack"]: r for r in rows if "connections" in r["mode"]}
    fast, slow = (concurrent[name] for name, _ in stacks)
    ratio = (f"With {args.clients} connections the default stack serves {fast['throughput'] / slow['throughput']:.2f}x "
             f"the requests per second of h11 + asyncio, at {slow['median_ms'] / fast['median_ms']:.2f}x lower "
             "median latency.")
    return rows, ratio


def stack_markdown(args, rows: list[dict], ratio: str) -> list[str]:
    md = ["## POST /solve by HTTP stack", "",
          f"`--clients {args.clients} --requests {args.requests}`, closed loop (each connection sends its next "
          "request when the answer arrives). Body: Llama3_8B on H100, batch 8, fp16 (one Engine.solve, answered "
          "in the HTTP process).", "",
          "| stack | mode | requests | median (ms) | p99 (ms) | throughput (req/s) |", "|---|---|---|---|---|---|"]
    md += [f"| {r['stack']} | {r['mode']} | {r['requests']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | "
           f"{r['throughput']:.0f} |" for r in rows]
    return md + ["", ratio, "", "The asyncio-client rows are what the server sustains; in the httpx row the 50 "
                 "Python clients use more CPU per request than the server, so it measures them as much as the "
                 "server.", ""]


def load_markdown(args, rows: list[dict]) -> list[str]:
    md = ["## Sustained load, jobs running", "",
          f"One server (httptools + uvloop, a local Dask cluster of 2 worker processes), {args.clients} "
          f"keep-alive connections each sending a request every {args.interval * 1e3:g} ms for {args.seconds:g} s "
          f"(about {args.clients / args.interval:,.0f} requests/s offered). The job mix keeps 4 jobs submitted: "
          "1 s sleep jobs and 30,000-point sweep jobs in turn (each sweep's result, about 4 MB of JSON, is "
          "stored and its progress reported).", "",
          "| load | requests | median (ms) | p99 (ms) | throughput (req/s) | jobs finished during the loaded runs |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['mode']} | {r['requests']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['throughput']:.0f} | "
           f"{r.get('jobs_finished', '')} |" for r in rows]
    return md + [""]


def print_rows(rows: list[dict]) -> None:
    header = f"{'stack':<30} {'mode':<36} {'requests':>8} {'median ms':>10} {'p99 ms':>8} {'req/s':>8}"
    print("\n".join([header, "-" * len(header)] + [
        f"{r.get('stack', 'httptools + uvloop (default)'):<30} {r['mode']:<36} {r['requests']:>8} "
        f"{r['median_ms']:>10.2f} {r['p99_ms']:>8.2f} {r['throughput']:>8.0f}" for r in rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client (stack comparison)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (stack comparison)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each sustained load")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two requests of a connection")
    parser.add_argument("--only", choices=["stacks", "load"], help="run one part only")
    parser.add_argument("--out", default=str(HERE / "results" / "service.md"))
    args = parser.parse_args()

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    md = ["# HTTP service", "", f"`python benchmarks/bench_service.py` on {machine}; server, workers and load "
          "generator share the machine.", ""]
    results: dict = {"machine": machine, "date": time.strftime("%Y-%m-%d")}
    if args.only != "load":
        rows, ratio = compare_stacks(args)
        print_rows(rows)
        print(ratio)
        md += stack_markdown(args, rows, ratio)
        results["stacks"] = rows
    if args.only != "stacks":
        rows = under_load(args)
        print_rows(rows)
        md += load_markdown(args, rows)
        results["load"] = {"clients": args.clients, "seconds": args.seconds, "interval_s": args.interval, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md))
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
