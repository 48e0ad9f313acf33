"""Wall 11 (Complexity): compute-optimal model size and data (Chinchilla).

    C     = 6 N D                      training FLOP of a dense transformer
    D*    = 20 N*                      compute-optimal tokens per parameter
    N*    = sqrt(C / (6 * 20))         so the optimal size grows as the square root of the budget
    D     = C / (6 N)                  tokens a fixed-size model can train on
    L     = E + A / N^alpha + B / D^beta          parametric loss fit
    C     = n_gpu * t * F * eta        a budget in accelerator-time, at peak F and utilization eta
    L     = (N / (12 r^2))^(1/3),  d = r L      a dense decoder shape for N (N ~ 12 L d^2, d/L = r)

| symbol | unit | meaning | source |
|---|---|---|---|
| C | FLOP | training compute budget | input |
| FLOP_PER_PARAM_TOKEN | FLOP | 6: forward (2) plus backward (4) FLOP per parameter per token | Kaplan et al. 2020; Hoffmann et al. 2022 |
| TOKENS_PER_PARAM | - | 20 tokens per parameter at the compute optimum | Hoffmann et al. 2022 (Chinchilla), approach 1 |
| N | param | parameters | input or derived |
| E, A, B, alpha, beta | - | 1.69, 406.4, 410.7, 0.34, 0.28 | Hoffmann et al. 2022, eq. 10 (approach 3 fit) |
| F | FLOP/s | dense peak of one accelerator at the training precision | datasheet |
| eta | - | model FLOP utilization | PaLM (Chowdhery et al. 2022): 0.3-0.5 |
| t_gpu | s | accelerator-time (GPU-seconds) | input |
| 12 | - | parameters per layer per d^2 of a dense decoder (4 d^2 attention + 8 d^2 MLP) | Kaplan et al. 2020 |
| r | - | width over depth d/L = 128 (GPT-3 12288/96, Llama 3 8B 4096/32; loss is flat over a wide range) | Kaplan et al. 2020; Brown et al. 2020 |
"""
from mlsysim_opt.symbolic import Sheet, const, sqrt, sym

from .memory import P
from .roofline import F, eta

C = sym("compute_budget", "FLOP", "training compute budget", "input", lower=1e-30)
D = sym("training_token_count", "token", "tokens the model trains on", "input or derived", lower=1e-30)
t_gpu = sym("accelerator_time", "s", "accelerator-time of a budget (GPU-seconds)", "input", lower=0.0)

FLOP_PER_PARAM_TOKEN = const("training_flop_per_param_token", 6, "FLOP",
                             "training FLOP per parameter per token (2 forward + 4 backward)",
                             "Kaplan et al. 2020; Hoffmann et al. 2022")
TOKENS_PER_PARAM = const("chinchilla_tokens_per_param", 20, "dimensionless",
                         "compute-optimal tokens per parameter", "Hoffmann et al. 2022 (approach 1)")
E_LOSS = const("chinchilla_irreducible_loss", 1.69, "dimensionless", "entropy of natural text",
               "Hoffmann et al. 2022, eq. 10")
A_LOSS = const("chinchilla_param_coefficient", 406.4, "dimensionless", "parameter term coefficient",
               "Hoffmann et al. 2022, eq. 10")
B_LOSS = const("chinchilla_data_coefficient", 410.7, "dimensionless", "data term coefficient",
               "Hoffmann et al. 2022, eq. 10")
ALPHA = const("chinchilla_param_exponent", 0.34, "dimensionless", "parameter exponent",
              "Hoffmann et al. 2022, eq. 10")
BETA = const("chinchilla_data_exponent", 0.28, "dimensionless", "data exponent", "Hoffmann et al. 2022, eq. 10")

sheet = Sheet("scaling", "Chinchilla compute-optimal scaling and the parametric loss", walls=[11],
              iron_law_term="FLOPs (the numerator)",
              sources=["Hoffmann et al. 2022, Training Compute-Optimal Large Language Models",
                       "Kaplan et al. 2020, Scaling Laws for Neural Language Models"])

optimal_params = sheet.define("optimal_params", sqrt(C / (FLOP_PER_PARAM_TOKEN * TOKENS_PER_PARAM)), "param",
                              "compute-optimal parameter count N*")
sheet.define("optimal_tokens", TOKENS_PER_PARAM * optimal_params, "token", "compute-optimal tokens D* = 20 N*")
sheet.define("tokens_for_size", C / (FLOP_PER_PARAM_TOKEN * P), "token",
             "tokens a model of N parameters can train on within the budget")
sheet.define("training_flops", FLOP_PER_PARAM_TOKEN * P * D, "FLOP", "training compute C = 6 N D")
sheet.define("loss", E_LOSS + A_LOSS / P ** ALPHA + B_LOSS / D ** BETA, "dimensionless",
             "predicted pre-training loss (nats per token)")
sheet.define("budget_from_accelerator_time", t_gpu * F * eta, "FLOP",
             "FLOP an accelerator-time budget delivers at peak F and utilization eta")
sheet.define("accelerator_time_for_budget", C / (F * eta), "s", "accelerator-time a FLOP budget needs")

PARAMS_PER_LAYER_D2 = const("params_per_layer_per_width_squared", 12, "dimensionless",
                            "dense decoder parameters per layer over d_model^2", "Kaplan et al. 2020")
ASPECT = const("width_over_depth", 128, "dimensionless", "d_model over layers", "Kaplan et al. 2020; GPT-3")
depth = sheet.define("shape_layers", (P / (PARAMS_PER_LAYER_D2 * ASPECT ** 2)) ** (1 / 3), "dimensionless",
                     "layers of a dense decoder with N parameters")
sheet.define("shape_width", ASPECT * depth, "dimensionless", "d_model of that decoder")
