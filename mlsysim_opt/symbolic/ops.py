"""The operations an equation sheet may use. Each one has a rule in every backend
(:data:`mlsysim_opt.compile.rules.NODE_TYPES` lists them; a test checks every backend covers them)."""
import sympy

Max = sympy.Max
Min = sympy.Min
Piecewise = sympy.Piecewise
ceiling = sympy.ceiling
floor = sympy.floor
log = sympy.log
exp = sympy.exp
sqrt = sympy.sqrt
Heaviside = sympy.Heaviside
Abs = sympy.Abs
