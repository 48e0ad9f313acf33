"""Wall 16 (Multi-tenant): tenants sharing accelerators wait for each other.

Tenants i send requests at rate lambda_i; each request holds the shared accelerators for a service
time with mean s_i and squared coefficient of variation c_i^2 (0 deterministic, 1 exponential).
The accelerators serve one request at a time (an M/G/1 queue).

    rho_i  = lambda_i s_i                                   load of tenant i
    r_i    = lambda_i s_i^2 (1 + c_i^2) / 2                 its share of the mean residual work
    W0     = sum_i r_i                                      mean residual service seen by an arrival
    W_i    = W0 / ((1 - sigma_<i) (1 - sigma_<=i))          mean wait of tenant i
    T_i    = W_i + s_i                                      mean response time

sigma_<i and sigma_<=i are the loads of the tenants served before tenant i, without and with it.
First come, first served: every tenant has sigma_< = 0 and sigma_<= = rho, and W_i is the
Pollaczek-Khinchine mean wait lambda E[S^2] / (2 (1 - rho)); with exponential service it is the
M/M/1 wait rho s / (1 - rho). With non-preemptive priorities it is Cobham's formula. The loads are
sums of the per-tenant rho_i (a reduction over tenants, done by the solver).

| symbol | unit | meaning | source |
|---|---|---|---|
| lambda_i | 1/s | request rate of the tenant | input |
| s_i | s | mean service time of one request on the shared accelerators | Engine / serving latency, or input |
| c_i^2 | - | squared coefficient of variation of the service time | input (1 exponential, 0 deterministic) |
| W0 | s | mean residual work | Kleinrock 1975, Queueing Systems vol. 1 |
| sigma_<, sigma_<= | - | cumulative load before / through this tenant | Cobham 1954 |
"""
from mlsysim_opt.symbolic import Sheet, sym

lam = sym("arrival_rate", "1/s", "request arrival rate", "input", lower=0.0)
s = sym("service_time", "s", "mean service time of one unit of work", "input", lower=1e-30)
scv = sym("service_cv2", "dimensionless", "squared coefficient of variation of service times", "input", lower=0.0)
W0 = sym("residual_work", "s", "mean residual work an arrival finds", "Kleinrock 1975", lower=0.0)
sigma_before = sym("load_before", "dimensionless", "load of tenants served before this one", "Cobham 1954",
                   lower=0.0, upper=1.0)
sigma_through = sym("load_through", "dimensionless", "load of tenants served before and with this one",
                    "Cobham 1954", lower=0.0, upper=1.0)

sheet = Sheet("multitenant", "Tenants sharing accelerators: M/G/1 waits, FCFS and priorities", walls=[16],
              iron_law_term="Goodput (time spent queued is not served)",
              sources=["Pollaczek 1930; Khinchine 1932 (M/G/1 mean wait)",
                       "Cobham 1954, Priority Assignment in Waiting Line Problems",
                       "Kleinrock 1975, Queueing Systems, vol. 1"])

sheet.define("tenant_load", lam * s, "dimensionless", "utilization the tenant adds")
sheet.define("tenant_residual_work", lam * s ** 2 * (1 + scv) / 2, "s", "the tenant's share of W0")
wait = sheet.define("tenant_wait", W0 / ((1 - sigma_before) * (1 - sigma_through)), "s", "mean queueing wait")
response = sheet.define("tenant_response_time", wait + s, "s", "mean wait plus service")
sheet.define("tenant_slowdown", response / s, "dimensionless", "response time over service time")
