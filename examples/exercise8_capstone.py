"""Exercise 8 end to end: Llama-3-70B at 1,000 QPS across US East and Quebec, ITL under 50 ms,
$5M and 500 tCO2e per year, N+1 redundancy per region. Solved with and without INT4."""
from mlsysim_opt import CapstoneProblem, precision_effect

problem = CapstoneProblem.exercise8()
effect = precision_effect(problem, "int4")
print("With INT4 allowed:")
print(effect["with"])
print("\nWithout INT4:")
print(effect["without"])
if effect["changes_answer"]:
    print(f"\nINT4 changes the answer: it saves ${effect['saving_usd']:,.0f} per year.")
else:
    used = sorted({d.config.precision for d in effect["with"].regions})
    print(f"\nINT4 does not change the answer: the optimum uses {', '.join(used)}. Weight-only INT4 halves "
          "the weights again but keeps 16-bit arithmetic and a 16-bit KV cache, so on these accelerators "
          "it buys memory, not cheaper tokens.")
