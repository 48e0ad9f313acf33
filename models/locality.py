"""Wall 10 (Locality): how the network topology turns link bandwidth into usable bandwidth.

Bisection fraction f = bandwidth crossing the worst even cut, over N/2 endpoint links. Under
uniform all-to-all traffic half of every endpoint's traffic crosses that cut, so each endpoint can
sustain BW_eff = b * min(1, f).

    Fat tree (folded Clos of radix-k switches, Al-Fares et al. 2008; Leiserson 1985):
        tiers t   = max(1, ceiling(log(N/2) / log(k/2)))    endpoints fit in 2 (k/2)^t
        f         = 1 / oversubscription
        hops      = 2t - 1 switches on the longest path
    Dragonfly (Kim et al. 2008; balanced a = 2p = 2h, minimal routing):
        groups g  = ceiling(N / (a p))
        f         = g h / (2 p (g - 1))                     (g/2)^2 group pairs cross the cut, a h / (g-1) links each
        hops      = 3 router-to-router hops (local, global, local)
    Torus, k-ary n-cube (Dally & Towles 2004):
        k         = N^(1/n)
        f         = 4 / k                                   2 k^(n-1) wrap-around links cross the cut
        hops      = n k / 4 on average, n floor(k/2) at most
    Ring: the torus with n = 1 (f = 4/N, N/4 hops on average).

| symbol | unit | meaning | source |
|---|---|---|---|
| N | - | endpoints (accelerators or NICs) | fleet |
| b | byte/s | bandwidth of one endpoint link, one way | fabric record |
| k | - | switch radix (ports) | switch datasheet (NDR Quantum-2: 64) |
| o | - | oversubscription of the fat tree (1 = full bisection) | fabric record |
| p, a, h | - | dragonfly endpoints per router, routers per group, global links per router | Kim et al. 2008 |
| n | - | torus dimensions | system design (TPU v4: 3) |
| t_hop | s | latency added by one switch or router hop | switch datasheet |
"""
from mlsysim_opt.symbolic import Max, Min, Sheet, ceiling, floor, log, sym

N = sym("endpoint_count", "dimensionless", "endpoints on the network", "fleet", lower=1.0)
b = sym("link_bandwidth", "byte/s", "bandwidth of one endpoint link, one way", "fabric record", lower=1e-30)
k = sym("switch_radix", "dimensionless", "ports per switch", "switch datasheet", lower=3.0)
o = sym("oversubscription", "dimensionless", "fat-tree oversubscription (1 = full bisection)", "fabric record",
        lower=1.0)
p = sym("dragonfly_endpoints_per_router", "dimensionless", "endpoints per router", "Kim et al. 2008", lower=1.0)
a = sym("dragonfly_routers_per_group", "dimensionless", "routers per group", "Kim et al. 2008", lower=1.0)
h = sym("dragonfly_global_links", "dimensionless", "global links per router", "Kim et al. 2008", lower=1.0)
n = sym("torus_dimensions", "dimensionless", "dimensions of the torus", "system design", lower=1.0)
t_hop = sym("hop_latency", "s", "latency added by one switch or router hop", "switch datasheet", lower=0.0)

sheet = Sheet("locality", "Network topology: bisection bandwidth and hop counts", walls=[10],
              iron_law_term="eta_scale",
              sources=["Al-Fares, Loukissas & Vahdat 2008, A Scalable, Commodity Data Center Network Architecture",
                       "Kim, Dally, Scott & Abts 2008, Technology-Driven, Highly-Scalable Dragonfly Topology",
                       "Dally & Towles 2004, Principles and Practices of Interconnection Networks"])

# Fat tree
tiers = sheet.define("fat_tree_tiers", Max(1, ceiling(log(N / 2) / log(k / 2))), "dimensionless",
                     "switch tiers needed for N endpoints")
fat_f = sheet.define("fat_tree_bisection_fraction", 1 / o, "dimensionless", "bisection over N/2 endpoint links")
sheet.define("fat_tree_effective_bandwidth", b * Min(1, fat_f), "byte/s", "per-endpoint all-to-all bandwidth")
fat_hops = sheet.define("fat_tree_max_hops", 2 * tiers - 1, "dimensionless", "switches on the longest path")
sheet.define("fat_tree_latency", fat_hops * t_hop, "s", "switch latency of the longest path")

# Dragonfly
groups = sheet.define("dragonfly_groups", Max(2, ceiling(N / (a * p))), "dimensionless", "groups in use")
fly_f = sheet.define("dragonfly_bisection_fraction", Min(1, groups * h / (2 * p * (groups - 1))), "dimensionless",
                     "bisection over N/2 endpoint links, minimal routing")
sheet.define("dragonfly_effective_bandwidth", b * fly_f, "byte/s", "per-endpoint all-to-all bandwidth")
sheet.define("dragonfly_max_hops", 3, "dimensionless", "router-to-router hops: local, global, local")
sheet.define("dragonfly_latency", 3 * t_hop, "s", "router latency of the longest minimal path")

# Torus (k-ary n-cube) and ring (n = 1)
radix = sheet.define("torus_radix", N ** (1 / n), "dimensionless", "nodes along each dimension")
torus_f = sheet.define("torus_bisection_fraction", Min(1, 4 / radix), "dimensionless",
                       "bisection over N/2 endpoint links")
sheet.define("torus_effective_bandwidth", b * torus_f, "byte/s", "per-endpoint all-to-all bandwidth")
avg_hops = sheet.define("torus_mean_hops", n * radix / 4, "dimensionless", "mean minimal hops, uniform traffic")
# (the 1e-9 keeps a float root such as 64^(1/3) = 3.9999999999999996 from flooring one step short)
sheet.define("torus_max_hops", n * floor(radix / 2 + 1e-9), "dimensionless", "diameter")
sheet.define("torus_latency", avg_hops * t_hop, "s", "router latency of a mean path")
