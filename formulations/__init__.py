"""Optimization problems, one per file: decision variables, objective and constraints built from
the compiled model expressions (``mlsysim_opt.compile.pyomo``), solved by HiGHS
(``mlsysim_opt.highs``); each returns a typed result."""
