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


def _lattice(cls, args):
    """``cls(*args)`` as it is written: no comparison of the arguments (on nested expressions
    SymPy's takes seconds and decides nothing, the signs depend on the inputs) and no canonical
    ordering of them (whose sort keys walk every tree)."""
    args = [sympy.sympify(a) for a in args]
    if len(args) == 1:
        return args[0]
    node = sympy.Expr.__new__(cls, *args)
    node._argset = frozenset(args)
    return node


def max_of(*args):
    """The largest of ``args``, written as is (see :func:`_lattice`)."""
    return _lattice(sympy.Max, args)


def min_of(*args):
    """The smallest of ``args``, written as is (see :func:`_lattice`)."""
    return _lattice(sympy.Min, args)
