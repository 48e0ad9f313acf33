"""Two servers, one job store: what one computes, the other answers from the cache; what one is
told (a new accelerator), the other learns; when one crashes, the other finishes its jobs.

    python examples/demo_shared_store.py                                   # a temporary SQLite file
    python examples/demo_shared_store.py --db postgresql://me@127.0.0.1/mlsysim   # or PostgreSQL

SQLite lets servers on one machine share a file; PostgreSQL lets servers on many machines share a
database (docs/service.md, "Several servers, one database").
"""
import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from mlsysim_opt.service.local import LocalServer

QUESTION = {"model": "Llama3_70B", "fleet": "Lab_64_H100", "batch_size": 256}


def wait_until(check, timeout=30.0, every=0.2):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {timeout:g} s")
        time.sleep(every)
    return found


def demo(db: str) -> None:
    a, b = (LocalServer(db=db, workers=1, job_timeout=120, test_jobs=True) for _ in range(2))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(LocalServer.start, (a, b)))
    try:
        api_a, api_b = (httpx.Client(base_url=s.url, timeout=120) for s in (a, b))

        # 1. One cache: a solves the parallelism search; b answers the same question from the store.
        started = time.perf_counter()
        answer = api_a.post("/parallelism", json=QUESTION)
        best = answer.json()["best_config"]
        first = time.perf_counter() - started
        started = time.perf_counter()
        again = api_b.post("/parallelism", json=QUESTION)
        print(f"a: best split TP{best['tp']} x PP{best['pp']} x DP{best['dp']} in {first * 1e3:.0f} ms; "
              f"b: the same answer from the shared cache in {(time.perf_counter() - started) * 1e3:.0f} ms "
              f"(job {again.headers['X-Job-Id'][:8]} of a, X-Cache: {again.headers['X-Cache']})")

        # 2. One registry of added records: told to a, known to b within one heartbeat (5 s).
        chip = {"name": "Shared NPU", "compute": {"peak_flops": "400 TFLOP/s"},
                "memory": {"capacity": "96 GB", "bandwidth": "2.4 TB/s"}, "tdp": "500 W"}
        api_a.post("/registry/hardware", json=chip).raise_for_status()
        started = time.perf_counter()
        wait_until(lambda: api_b.get("/registry/hardware/Shared_NPU").status_code == 200)
        solved = api_b.post("/solve", json={"model": "Llama3_8B", "hardware": "Shared_NPU", "batch_size": 1}).json()
        print(f"b knew a's new accelerator after {time.perf_counter() - started:.1f} s: Llama-3-8B decode "
              f"{solved['latency']['value']:.2f} {solved['latency']['unit']} on it")

        # 3. A crash: a dies mid-job (SIGKILL); b notices within a heartbeat and runs the job again.
        job = api_a.post("/jobs", json={"kind": "sleep", "params": {"seconds": 2, "tag": "crash-demo"}}).json()
        wait_until(lambda: api_a.get(f"/jobs/{job['id']}").json()["status"] == "running", every=0.05)
        a.stop(kill=True)
        started = time.perf_counter()
        done = wait_until(lambda: (j := api_b.get(f"/jobs/{job['id']}").json())["status"] == "succeeded" and j)
        print(f"a was killed while running job {job['id'][:8]}; b finished it {time.perf_counter() - started:.1f} s "
              f"later (attempt {done['attempts']}; note: {done['note']})")
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="a SQLite file or postgresql:// URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    if args.db:
        demo(args.db)
    else:
        with tempfile.TemporaryDirectory() as folder:
            demo(str(Path(folder) / "shared.sqlite3"))
