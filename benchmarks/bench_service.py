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

Prints a table and writes benchmarks/results/service.md.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "service.md"))
    args = parser.parse_args()

    stacks = [("httptools + uvloop (default)", ("--http", "httptools", "--loop", "uvloop")),
              ("h11 + asyncio", ("--http", "h11", "--loop", "asyncio"))]
    rows = []
    for stack, flags in stacks:
        with LocalServer(workers=args.workers, extra_args=flags) as server:
            measured = [sequential(server.url, 500), raw_concurrent(server.port, args.clients, args.requests)]
            if stack == stacks[0][0]:
                measured.append(httpx_concurrent(server.url, args.clients, args.requests))
        rows += [{"stack": stack, **r} for r in measured]

    header = f"{'stack':<30} {'mode':<36} {'requests':>8} {'median ms':>10} {'p99 ms':>8} {'req/s':>8}"
    lines = [header, "-" * len(header)]
    lines += [f"{r['stack']:<30} {r['mode']:<36} {r['requests']:>8} {r['median_ms']:>10.2f} {r['p99_ms']:>8.2f} "
              f"{r['throughput']:>8.0f}" for r in rows]
    concurrent = {r["stack"]: r for r in rows if "connections" in r["mode"]}
    fast, slow = (concurrent[name] for name, _ in stacks)
    ratio = (f"With {args.clients} connections the default stack serves {fast['throughput'] / slow['throughput']:.2f}x "
             f"the requests per second of h11 + asyncio, at {slow['median_ms'] / fast['median_ms']:.2f}x lower "
             "median latency.")
    print("\n".join(lines) + "\n" + ratio)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    md = ["# HTTP service: POST /solve", "",
          f"`python benchmarks/bench_service.py --clients {args.clients} --requests {args.requests}` on {machine};",
          "server and load generator share the machine. Body: Llama3_8B on H100, batch 8, fp16 "
          "(one Engine.solve, answered in the HTTP process).", "",
          "| stack | mode | requests | median (ms) | p99 (ms) | throughput (req/s) |", "|---|---|---|---|---|---|"]
    md += [f"| {r['stack']} | {r['mode']} | {r['requests']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | "
           f"{r['throughput']:.0f} |" for r in rows]
    md += ["", ratio, "", "The asyncio-client rows are what the server sustains; in the httpx row the 50 Python "
               "clients use more CPU per request than the server, so it measures them as much as the server."]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(md) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
