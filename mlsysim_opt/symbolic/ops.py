"""The operations an equation sheet may use. Each one has a rule in every backend
(:data:`mlsysim_opt.compile.rules.NODE_TYPES` lists them; a test checks every backend covers them)."""
import sympy

Piecewise = sympy.Piecewise
ceiling = sympy.ceiling
floor = sympy.floor
log = sympy.log
exp = sympy.exp
sqrt = sympy.sqrt
Heaviside = sympy.Heaviside
Abs = sympy.Abs


def _lattice(cls, args):
    """``cls(*args)`` as it is written, with only the rewrites that need no comparison of
    expressions: nested calls flattened, repeated arguments dropped, numbers folded into one.

    SymPy's own constructor compares every pair of arguments (``a >= b`` through the assumption
    system, then ``factor_terms(a - b)``). On a sheet's nested expressions that takes seconds,
    most of the time it takes to build the sheets, and decides nothing: the signs depend on the
    inputs. Rebuilding a node (``xreplace``, ``subs``) goes through here again, so substituting
    numbers still folds them."""
    if not args:
        raise TypeError(f"{cls.__name__} needs at least one argument")
    flat: list = []
    for arg in map(sympy.sympify, args):
        flat.extend(arg.args if isinstance(arg, cls.__mro__[1]) else (arg,))
    numbers = [a for a in flat if a.is_Number]
    if len(numbers) > 1:
        keep = (max if cls.__mro__[1] is sympy.Max else min)(numbers)
        flat = [a for a in flat if not a.is_Number or a is keep]
    unique = list(dict.fromkeys(flat))
    if len(unique) == 1:
        return unique[0]
    node = sympy.Expr.__new__(cls, *unique)
    node._argset = frozenset(unique)
    return node


class Max(sympy.Max):
    """The largest of the arguments (built as written: see :func:`_lattice`)."""

    def __new__(cls, *args, **options):
        return _lattice(cls, args)


class Min(sympy.Min):
    """The smallest of the arguments (built as written: see :func:`_lattice`)."""

    def __new__(cls, *args, **options):
        return _lattice(cls, args)


max_of = Max
min_of = Min
