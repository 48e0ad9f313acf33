"""Wall 14 (Communication): alpha-beta cost of the collectives that distributed training uses.

    T = (steps) * alpha + (bytes each rank puts on its link) / beta

Bandwidths are ONE-WAY per accelerator (an NVLink 4 GPU sends 450 GB/s while it receives 450 GB/s;
an NDR port 50 GB/s each way). ``M`` is the whole buffer: the array being all-reduced, the full
array after an all-gather, the full array before a reduce-scatter, the bytes one rank holds before
an all-to-all. The reduction arithmetic itself is not charged (it runs at HBM speed, far above link
speed).

| symbol | unit | meaning | source |
|---|---|---|---|
| M | byte | bytes of the collective's buffer (see above) | input |
| p | - | ranks in the group | input |
| beta | byte/s | one-way bandwidth of the slowest link a rank uses | datasheet (registry) |
| alpha | s | one-hop latency (NIC + switch + software) | registry (estimate) |
| g | - | ranks of the group inside one node (hierarchical all-reduce) | placement |
| n | - | nodes the group spans (hierarchical all-reduce) | placement |
| beta_intra, alpha_intra | byte/s, s | intra-node link of one accelerator (NVLink) | registry (Node) |
| beta_fabric, alpha_fabric | byte/s, s | inter-node port of one accelerator (one NIC per GPU) | registry (NetworkFabric) |
| G | - | accelerators per node | registry (Node) |
| span | - | consecutive accelerators a group covers (placement test) | placement |
| o | - | oversubscription above the leaf tier (1 = non-blocking) | registry (NetworkFabric) |
| N_leaf | - | nodes whose ports meet below the oversubscribed tier (a leaf or rail group) | registry (NetworkFabric) |
| u | - | share of the oversubscribed tier's capacity other jobs use (0 = a dedicated fabric) | input |

Equations (Hockney 1994 alpha-beta model; Thakur, Rabenseifner & Gropp 2005):

* ring all-reduce: 2(p-1) alpha + 2 (p-1)/p M / beta (bandwidth-optimal: Patarasuk & Yuan 2009)
* double binary tree all-reduce: 2 ceil(log2 p) alpha + 2 M / beta (Sanders, Speck & Traff 2009;
  each rank is an inner node of one tree and a leaf of the other, so it sends and receives about M
  on the way up and M on the way down)
* all-reduce: the faster of the two (a collective library picks the algorithm by size)
* reduce-scatter, all-gather (ring): (p-1) alpha + (p-1)/p M / beta
* all-to-all (pairwise exchange): (p-1) alpha + (p-1)/p M / beta
* point-to-point: alpha + M / beta
* hierarchical all-reduce: reduce-scatter inside the node (NVLink), all-reduce of the 1/g shard
  across nodes (every GPU on its own NIC, g rings or trees in parallel), all-gather inside the node.
* hierarchical all-to-all: of a rank's p-1 peers, g-1 share its node (NVLink) and p-g do not (the
  fabric); both links carry their parts at once: max((g-1) alpha_i + (g-1)/p M/beta_i,
  (p-g) alpha_f + (p-g)/p M/beta_f).

Contention (folded-Clos fabrics, Leiserson 1985; Al-Fares et al. 2008). A group of n nodes whose
traffic spreads evenly over its members sends a share x = max(0, 1 - N_leaf/n) of its fabric bytes
across the oversubscribed tier, which carries 1/o of the ports' rate, less what other jobs use:

    beta_f(n) = beta_fabric / max(1, x o / (1 - u))

A group inside one leaf domain (x = 0) runs at the port rate whatever the oversubscription; a
fabric with o = 1 and no other tenants (u = 0) never slows down. Uniform spreading is the
all-to-all's pattern and what ECMP hashing of ring and tree flows tends to; topology-aware rings
that cross the tier at few links do better (a bound, not an average, for those).
"""
from mlsysim_opt.symbolic import Max, Min, Piecewise, Sheet, ceiling, floor, log, sym

M = sym("message_bytes", "byte", "bytes of the collective's buffer", "input")
p = sym("ranks", "dimensionless", "ranks in the communication group", "input", lower=1)
beta = sym("link_bandwidth", "byte/s", "one-way bandwidth of one rank's link", "registry", lower=1e-30)
alpha = sym("link_latency", "s", "one-hop latency of one message", "registry")
g = sym("local_ranks", "dimensionless", "ranks of the group inside one node", "placement", lower=1)
n = sym("node_ranks", "dimensionless", "nodes the group spans", "placement", lower=1)
beta_intra = sym("intra_node_bandwidth", "byte/s", "one-way intra-node bandwidth per accelerator (NVLink)",
                 "registry (Node)", lower=1e-30)
alpha_intra = sym("intra_node_latency", "s", "intra-node one-hop latency", "registry (Node)")
beta_fabric = sym("fabric_bandwidth", "byte/s", "one-way inter-node bandwidth per accelerator port",
                  "registry (NetworkFabric, divided by oversubscription)", lower=1e-30)
alpha_fabric = sym("fabric_latency", "s", "inter-node one-hop latency", "registry (NetworkFabric)")
G = sym("accelerators_per_node", "dimensionless", "accelerators in one node", "registry (Node)", lower=1)
span = sym("group_span", "dimensionless", "consecutive accelerators a group covers", "placement", lower=1)
o_sub = sym("oversubscription", "dimensionless", "fat-tree oversubscription (1 = full bisection)", "fabric record",
            lower=1)
N_leaf = sym("leaf_nodes", "dimensionless", "nodes whose ports meet below the oversubscribed tier",
             "registry (NetworkFabric)", lower=1)
u = sym("background_load", "dimensionless", "share of the oversubscribed tier other jobs use (0 = dedicated)",
        "input", upper=0.99)

sheet = Sheet("collectives", "Alpha-beta cost of collectives: ring, tree, hierarchical, all-to-all, p2p; contention",
              walls=[14], iron_law_term="Communication",
              sources=["Hockney 1994, The communication challenge for MPP",
                       "Thakur, Rabenseifner & Gropp 2005, Optimization of Collective Communication in MPICH",
                       "Patarasuk & Yuan 2009, Bandwidth optimal all-reduce algorithms",
                       "Sanders, Speck & Traff 2009, Two-tree algorithms for full bandwidth broadcast, "
                       "reduction and scan",
                       "Leiserson 1985, Fat-trees; Al-Fares, Loukissas & Vahdat 2008, A scalable, commodity "
                       "data center network architecture (oversubscription)"])

# --- flat collectives over one kind of link -------------------------------------------------------
ring_allreduce = sheet.define("ring_allreduce_time", 2 * (p - 1) * alpha + 2 * (p - 1) / p * M / beta, "s",
                              "ring all-reduce: reduce-scatter then all-gather around the ring")
tree_steps = ceiling(log(p) / log(2))
tree_allreduce = sheet.define("tree_allreduce_time",
                              Piecewise((0, p <= 1), (2 * tree_steps * alpha + 2 * M / beta, True)), "s",
                              "double binary tree all-reduce: log2 p latency, about 2M/beta of data")
allreduce = sheet.define("allreduce_time", Min(ring_allreduce, tree_allreduce), "s",
                         "all-reduce with the faster algorithm (ring at large messages, tree at many ranks)")
reduce_scatter = sheet.define("reduce_scatter_time", (p - 1) * alpha + (p - 1) / p * M / beta, "s",
                              "ring reduce-scatter of an M-byte buffer")
all_gather = sheet.define("all_gather_time", (p - 1) * alpha + (p - 1) / p * M / beta, "s",
                          "ring all-gather producing an M-byte buffer")
all_to_all = sheet.define("all_to_all_time", (p - 1) * alpha + (p - 1) / p * M / beta, "s",
                          "pairwise all-to-all: each rank keeps 1/p of its M bytes and sends the rest")
p2p = sheet.define("p2p_time", alpha + M / beta, "s", "one point-to-point message")

# --- contention: the fabric's rate for a group that spans n nodes ----------------------------------
def fabric_rate(nodes):
    """The fabric's one-way rate per port for a group spread over ``nodes`` nodes."""
    crossing = Max(0, 1 - N_leaf / nodes)
    return beta_fabric / Max(1, crossing * o_sub / (1 - u))


sheet.define("contention_factor", beta_fabric / fabric_rate(span / G), "dimensionless",
             "slowdown of a group of `span` accelerators' fabric traffic by the oversubscribed tier")

# --- placement: a group inside one node talks over NVLink, one that spans nodes over the fabric -----
# A group of `span` consecutive accelerators stays in one node when it is no larger than the node and
# tiles it exactly (span divides G); otherwise some of its messages cross the fabric, which then
# sets the pace of every ring step.
inside_node = (span <= G) & (floor(G / span) * span >= G)


def placed(intra, fabric):
    """One value per link, chosen by where a group of ``span`` accelerators lies."""
    return Piecewise((intra, inside_node), (fabric, True))


placed_bandwidth = sheet.define("placed_bandwidth", placed(beta_intra, fabric_rate(span / G)),
                                "byte/s", "link of a group: NVLink inside one node, else the fabric")
placed_latency = sheet.define("placed_latency", placed(alpha_intra, alpha_fabric), "s", "latency of a group's link")


def over(expr, message, ranks, bandwidth, latency):
    """``expr`` (one of the flat collectives above) for a given buffer, group and link."""
    return expr.xreplace({M: message, p: ranks, beta: bandwidth, alpha: latency})


# --- hierarchical all-reduce: g ranks per node on n nodes ------------------------------------------
hierarchical = sheet.define(
    "hierarchical_allreduce_time",
    over(reduce_scatter, M, g, beta_intra, alpha_intra)
    + over(allreduce, M / g, n, fabric_rate(n), alpha_fabric)
    + over(all_gather, M, g, beta_intra, alpha_intra),
    "s", "reduce-scatter in the node, all-reduce of the 1/g shard across nodes, all-gather in the node")

# --- hierarchical all-to-all: p ranks, g of them in each node ----------------------------------------
sheet.define(
    "hierarchical_all_to_all_time",
    Max((g - 1) * alpha_intra + (g - 1) / p * M / beta_intra,
        (p - g) * alpha_fabric + (p - g) / p * M / fabric_rate(p / g)),
    "s", "pairwise exchange: NVLink to the g-1 peers in the node and the fabric to the p-g others, at once")
