"""Optimization problems, one per file (SLA synthesis, fleet sizing, capstone, Pareto fronts,
parallelism), all built by one builder (``builder.py``): discrete options as columns evaluated by
the NumPy compile of the equation sheets, decisions bound to sheet symbols and compiled into Pyomo
rows (``mlsysim_opt.compile.pyomo`` where a row is not linear), solved by HiGHS
(``mlsysim_opt.highs``); each returns a typed result."""
