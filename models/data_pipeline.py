"""Walls 8 (Ingestion) and 9 (Transformation): can the input pipeline keep the accelerators fed?

    demand      = r * s                                 bytes per second the accelerators consume
    supply      = min(BW_storage, n_acc * BW_host)      storage read bandwidth or the host links, whichever is less
    rho_io      = demand / supply                       ingestion utilization (> 1: the pipeline cannot keep up)
    stall_io    = max(0, 1 - supply / demand)           fraction of step time the accelerators wait for data
    capacity    = n_cores / c                           samples per second the CPU workers can transform
    rho_cpu     = r / capacity
    stall_cpu   = max(0, 1 - capacity / r)
    cores_req   = ceiling(r * c)                        cores needed to keep up
    delivered   = min(r, supply / s, capacity)          samples per second actually delivered (each stage alone:
                                                        min(r, supply / s) and min(r, capacity))

With a prefetching pipeline the stages overlap, so the slowest stage sets the rate (Mohan et al.
2021 call the waiting "data stalls").

| symbol | unit | meaning | source |
|---|---|---|---|
| r | 1/s | samples (or tokens) per second the accelerators can consume | Engine/Distributed throughput, or input |
| s | byte | stored bytes per sample (e.g. ~110 kB per ImageNet JPEG; 2-4 bytes per token id) | dataset |
| BW_storage | byte/s | read bandwidth the storage system delivers to this job | input |
| BW_host | byte/s | host-to-accelerator link bandwidth, one way (PCIe Gen5 x16: 64 GB/s) | datasheet |
| n_acc | - | accelerators fed | fleet |
| n_cores | - | CPU cores running the transformation (decode, augment, tokenize) | input |
| c | s | CPU time to transform one sample on one core | measured / input |
"""
from mlsysim_opt.symbolic import Max, Min, Sheet, ceiling, sym

from .sustainability import n_acc

r = sym("sample_demand_rate", "1/s", "samples per second the accelerators can consume", "input", lower=1e-30)
s = sym("bytes_per_sample", "byte", "stored bytes per sample", "dataset", lower=1e-30)
BW_storage = sym("storage_bandwidth", "byte/s", "read bandwidth of the storage system for this job", "input",
                 lower=1e-30)
BW_host = sym("host_link_bandwidth", "byte/s", "host-to-accelerator link bandwidth, one way", "datasheet",
              lower=1e-30)
n_cores = sym("cpu_cores", "dimensionless", "CPU cores transforming samples", "input", lower=1e-9)
c = sym("transform_time_per_sample", "s", "CPU time to transform one sample on one core", "input", lower=1e-30)

sheet = Sheet("data_pipeline", "Input pipeline: ingestion bandwidth and CPU transformation", walls=[8, 9],
              iron_law_term="MFU (data stalls idle the accelerators)",
              sources=["Mohan et al. 2021, Analyzing and Mitigating Data Stalls in DNN Training (VLDB)",
                       "Murray et al. 2021, tf.data: A Machine Learning Data Processing Framework (VLDB)"])

demand = sheet.define("ingest_demand", r * s, "byte/s", "bytes per second the accelerators consume")
supply = sheet.define("ingest_supply", Min(BW_storage, n_acc * BW_host), "byte/s",
                      "bytes per second storage and host links can deliver")
sheet.define("ingest_utilization", demand / supply, "dimensionless", "demand over supply (> 1: cannot keep up)")
sheet.define("ingest_stall_fraction", Max(0, 1 - supply / demand), "dimensionless",
             "fraction of time the accelerators wait for data")
sheet.define("ingest_delivered_rate", Min(r, supply / s), "1/s", "samples per second ingestion delivers")
capacity = sheet.define("transform_capacity", n_cores / c, "1/s", "samples per second the CPU workers transform")
sheet.define("transform_utilization", r / capacity, "dimensionless", "demand over CPU capacity")
sheet.define("transform_stall_fraction", Max(0, 1 - capacity / r), "dimensionless",
             "fraction of time the accelerators wait for preprocessing")
sheet.define("cores_required", ceiling(r * c), "dimensionless", "CPU cores needed to keep up with demand")
sheet.define("transform_delivered_rate", Min(r, capacity), "1/s", "samples per second transformation delivers")
sheet.define("delivered_rate", Min(r, supply / s, capacity), "1/s", "samples per second actually delivered")
