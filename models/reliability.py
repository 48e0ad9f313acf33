"""Walls 15 (Fragility) and 19 (Checkpoint): failures, checkpoint intervals and goodput.

A synchronous training job stops when any component fails (a series system), so failure rates add:

    lambda   = n_nodes * sum_c (k_c / M_c)              fleet failure rate, k_c components of kind c per node
    M        = 1 / lambda                               fleet MTBF
    tau_Y    = sqrt(2 delta M)                          Young (1974)
    tau_D    = sqrt(2 delta M) [1 + sqrt(x)/3 + x/9] - delta,  x = delta / (2M),  if delta < 2M, else M
                                                        Daly (2006), higher-order optimum
    goodput  = tau / (M e^(R/M) (e^((tau+delta)/M) - 1))
                                                        Daly (2006): useful time over wall time with
                                                        exponential failures; it counts the checkpoint
                                                        writes, the work lost since the last checkpoint
                                                        (about (tau+delta)/2 per failure) and the restart
    first order: 1 - goodput ~ delta/(tau+delta) + (tau+delta)/(2M) + R/M

    S_ckpt   = P (b + b_opt)                            checkpoint: weights plus optimizer state
    BW_write = min(n_writers * BW_writer, BW_fs)        aggregate write bandwidth, capped by the filesystem
    delta    = S_ckpt / BW_write

| symbol | unit | meaning | source |
|---|---|---|---|
| M_gpu, M_nic | s | MTBF of one GPU (with its HBM) and of one NIC | Dubey et al. 2024 (Llama 3), Table 5, over 16,384 GPUs x 54 days |
| M_psu, M_host, M_net, M_sw | s | MTBF per node of power supplies, host (CPU, DRAM, SSD, board), network switches and cables, and software | same |
| k_gpu, k_nic | - | accelerators (GPUs) and NICs per node | node record |
| delta | s | time to write one checkpoint | input or derived |
| R | s | restart time after a failure (detect, reschedule, reload) | input |
| tau | s | compute time between checkpoints | Young 1974; Daly 2006 |
| P, b, b_opt | param, byte, byte | parameters, bytes per weight, optimizer bytes per parameter (mixed-precision Adam: 2 + 12 = 14) | Rajbhandari et al. 2020 (ZeRO) |
| BW_writer, BW_fs | byte/s | write bandwidth of one writer (node) and of the filesystem | input or estimate |
"""
from mlsysim_opt.symbolic import Min, Piecewise, Sheet, exp, sqrt, sym

from .memory import P, b, b_opt
from .sustainability import n_nodes

k_gpu = sym("accelerators_per_node", "dimensionless", "accelerators in one node", "node record", lower=1.0)
k_nic = sym("nics_per_node", "dimensionless", "NICs per node", "node record", lower=0.0)
M_gpu = sym("gpu_mtbf", "s", "mean time between failures of one GPU", "Dubey et al. 2024, Table 5", lower=1e-9)
M_nic = sym("nic_mtbf", "s", "mean time between failures of one NIC", "Dubey et al. 2024, Table 5", lower=1e-9)
M_psu = sym("psu_mtbf", "s", "MTBF of a node's power supplies", "Dubey et al. 2024, Table 5", lower=1e-9)
M_host = sym("host_mtbf", "s", "MTBF of a node's host (CPU, DRAM, SSD, board)", "Dubey et al. 2024, Table 5",
             lower=1e-9)
M_net = sym("network_mtbf", "s", "MTBF of a node's share of switches and cables", "Dubey et al. 2024, Table 5",
            lower=1e-9)
M_sw = sym("software_mtbf", "s", "MTBF of the software stack per node", "Dubey et al. 2024, Table 5", lower=1e-9)
delta = sym("checkpoint_time", "s", "time to write one checkpoint", "input or derived", lower=0.0)
R = sym("restart_time", "s", "time to detect a failure, reschedule and reload", "input", lower=0.0)
tau = sym("checkpoint_interval", "s", "compute time between checkpoints", "input or derived", lower=1e-9)
T_job = sym("job_time", "s", "failure-free compute time of the job", "input", lower=0.0)
n_writers = sym("checkpoint_writers", "dimensionless", "nodes writing checkpoint shards in parallel", "fleet",
                lower=1.0)
BW_writer = sym("writer_bandwidth", "byte/s", "write bandwidth of one writer", "input or estimate", lower=1e-30)
BW_fs = sym("filesystem_bandwidth", "byte/s", "write bandwidth of the shared filesystem", "input or estimate",
            lower=1e-30)

sheet = Sheet("reliability", "Failures, checkpoint intervals and goodput of a synchronous job", walls=[15, 19],
              iron_law_term="Goodput",
              sources=["Young 1974, A first order approximation to the optimum checkpoint interval",
                       "Daly 2006, A higher order estimate of the optimum checkpoint interval (FGCS 22)",
                       "Dubey et al. 2024, The Llama 3 Herd of Models, section 3.3.4 and Table 5"])

rate = sheet.define("failure_rate",
                    n_nodes * (k_gpu / M_gpu + k_nic / M_nic + 1 / M_psu + 1 / M_host + 1 / M_net + 1 / M_sw),
                    "1/s", "failures per unit time of the whole fleet (series system)")
M = sheet.define("fleet_mtbf", 1 / rate, "s", "mean time between job-stopping failures")

x = delta / (2 * M)
daly_applies = delta < 2 * M      # beyond it the job rarely completes an interval
young = sheet.define("young_interval", sqrt(2 * delta * M), "s", "Young's first-order optimal interval")
sheet.define("daly_interval",
             Piecewise((sqrt(2 * delta * M) * (1 + sqrt(x) / 3 + x / 9) - delta, daly_applies), (M, True)),
             "s", "Daly's higher-order optimal interval")
sheet.define("daly_fallback", Piecewise((0, daly_applies), (1, True)), "dimensionless",
             "1 when the checkpoint time reaches twice the MTBF and Daly's interval falls back to the MTBF")

goodput = sheet.define("goodput", tau / (M * exp(R / M) * (exp((tau + delta) / M) - 1)), "dimensionless",
                       "useful compute time over wall time (checkpoints, lost work and restarts)")
wall = sheet.define("expected_wall_time", T_job / goodput, "s", "expected wall time of the job")
sheet.define("expected_failures", wall / M, "dimensionless", "failures expected during the job")
sheet.define("failure_probability", 1 - exp(-wall / M), "dimensionless",
             "probability of at least one failure during the job")
sheet.define("checkpoint_overhead_share", delta / (tau + delta), "dimensionless",
             "first order: wall time spent writing checkpoints")
sheet.define("rework_share", (tau + delta) / (2 * M), "dimensionless",
             "first order: work lost since the last checkpoint, half an interval per failure")
sheet.define("restart_share", R / M, "dimensionless", "first order: time spent restarting")

# Checkpoint size and write time.
per_param = sheet.define("checkpoint_bytes_per_param", b + b_opt, "byte",
                         "bytes saved per parameter: the weight and its optimizer state")
checkpoint_bytes = sheet.define("checkpoint_bytes", P * per_param, "byte", "weights plus optimizer state")
writers_bw = n_writers * BW_writer
CHECKPOINT_BOUNDS = ("per-writer storage bandwidth", "filesystem")
write_bw = sheet.define("checkpoint_write_bandwidth", Min(writers_bw, BW_fs), "byte/s",
                        "aggregate write bandwidth, capped by the filesystem")
sheet.define("checkpoint_write_bound", Piecewise((1, writers_bw > BW_fs), (0, True)), "dimensionless",
             "index in CHECKPOINT_BOUNDS of the term that sets the write bandwidth")
sheet.define("checkpoint_write_time", checkpoint_bytes / write_bw, "s", "time to write one checkpoint")
