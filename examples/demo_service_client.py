"""The HTTP service from a client's side: solve, sweep, a job, a custom accelerator, an error.

    python examples/demo_service_client.py                 # starts a local server for the demo
    python examples/demo_service_client.py --url http://127.0.0.1:8000   # uses a running one
"""
import argparse
import time

import httpx

from mlsysim_opt.service.local import LocalServer


def demo(url: str) -> None:
    api = httpx.Client(base_url=url, timeout=60)

    # 1. Forward solve: Llama-3.1-8B decode on an H100 (memory-bound at batch 1).
    p = api.post("/solve", json={"model": "Llama3_8B", "hardware": "H100", "batch_size": 1}).json()
    print(f"solve: {p['model']} on {p['hardware']}: latency {p['latency']['value']:.2f} {p['latency']['unit']}, "
          f"{p['bottleneck']}-bound, ridge point {p['ridge_point']['value']:.0f} FLOP/B")

    # 2. Sweep: which batch makes decode compute-bound at 128 tokens of context?
    table = api.post("/sweep", json={"model": "Llama3_8B", "hardware_list": ["H100"], "seq_lens": [128],
                                     "batch_sizes": [1, 64, 128, 192, 256]}).json()
    col = {c: i for i, c in enumerate(table["columns"])}
    first = next(r for r in table["data"] if r[col["bottleneck"]] == "Compute")
    print(f"sweep: {table['points']} points; first compute-bound batch at 128-token context: {first[col['batch_size']]}")

    # 3. A job: the same sweep as a persisted, cached job in a worker process.
    job = api.post("/jobs", json={"kind": "sweep", "params": {"model": "Llama3_8B", "hardware_list": ["H100", "B200"],
                                                               "batch_sizes": [1, 8, 64, 512]}}).json()
    while job["status"] in ("queued", "running"):
        time.sleep(0.1)
        job = api.get(f"/jobs/{job['id']}").json()
    result = api.get(f"/jobs/{job['id']}/result").json()
    print(f"job: {job['kind']} {job['status']} with {result['points']} points")

    # 4. A custom accelerator, then a solve on it.
    chip = {"name": "Demo NPU", "compute": {"peak_flops": "200 TFLOP/s"},
            "memory": {"capacity": "48 GB", "bandwidth": "1.2 TB/s"}, "tdp": "300 W"}
    created = api.post("/registry/hardware", json=chip)
    key = created.json()["key"] if created.status_code == 201 else "Demo_NPU"
    q = api.post("/solve", json={"model": "Llama3_8B", "hardware": key, "batch_size": 1}).json()
    print(f"custom: {key}: Llama-3.1-8B decode {q['latency']['value']:.2f} ms, {q['throughput']['value']:.1f} tokens/s")

    # 5. Errors say which field broke which rule, and suggest names.
    err = api.post("/solve", json={"model": "Llama3_8B", "hardware": "H10O"})
    print(f"error: HTTP {err.status_code}: {err.json()['message']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server; by default one is started for the demo")
    args = parser.parse_args()
    if args.url:
        demo(args.url)
    else:
        with LocalServer(workers=1) as server:
            demo(server.url)
