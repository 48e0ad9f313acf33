"""Results take their units from the sheets: no solver converts a value with a literal unit factor
(``* 1e3``, ``/ 1e9``, ``/ 3600``, ...). Conversions go through ``units.sheet_quantity`` (a sheet
output), ``solvers.quantities`` (hot paths, inputs) or pint."""
import io
import math
import pathlib
import tokenize

import pytest

from mlsysim_opt.solvers.quantities import scale

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCANNED = sorted((ROOT / "mlsysim_opt" / "solvers").glob("*.py")) + [ROOT / "mlsysim_opt" / "engine.py"]

UNIT_FACTORS = {10.0 ** k for k in range(2, 25)} | {10.0 ** -k for k in range(2, 25)} | {
    60.0, 3600.0, 86400.0, 8760.0, 1440.0, 525600.0, 604800.0, 31536000.0, 31557600.0,   # time
    3.6e3, 3.6e6, 3.6e9, 3.6e12,                                                         # Wh, kWh, ...
    1024.0, 1024.0 ** 2, 1024.0 ** 3, 1024.0 ** 4, 8.0,                                  # binary prefixes, bits
}
"""Numbers that convert between units when a value is multiplied or divided by them (or by their
reciprocal). 8 (bits per byte) only counts next to ``*`` or ``/``."""

ASSIGNED_FACTORS = UNIT_FACTORS - {100.0, 0.01, 8.0, 0.125}
"""Also flagged when a module or function names one (``gb = 1e-9``): 100 and 8 are too often counts."""

ALLOWED: dict[tuple[str, str], str] = {
    # (file name, stripped source line): why the number there is not a unit conversion
    ("distributed.py", "MAX_GLOBAL_BATCH = 10_000_000"): "an input bound (sequences), not a conversion",
    ("distributed.py", "MAX_SEQ_LEN = 10_000_000"): "an input bound (tokens), not a conversion",
    ("distributed.py", "MAX_MEMORY_RESERVE = 1e15"): "an input bound (bytes), not a conversion",
}

OPERATORS = {"*", "/", "*=", "/=", "//", "//="}


def _is_factor(text: str, factors: set[float]) -> bool:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        return False
    return any(math.isclose(value, f, rel_tol=1e-12) or math.isclose(value, 1 / f, rel_tol=1e-12) for f in factors)


def literal_unit_factors(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every number in ``source`` that scales a value like a unit conversion:
    next to ``*`` or ``/`` (``x / 1e9``, ``1e3 * x``, ``x * 10 ** 9``), or bound to a name on its own
    (``gb = 1e-9``). Comments and plain strings are not code; the fields of f-strings are."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)]
    found = []
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.STRING and "f" in tok.string.split(tok.string[-1])[0].lower():
            found += [(tok.start[0], tok.line.strip()) for _ in _fstring_fields(tok.string)]
            continue
        if tok.type != tokenize.NUMBER:
            continue
        first, last, text = i, i, tok.string
        if i + 2 < len(tokens) and tokens[i + 1].string == "**":      # 10 ** 9, 10 ** -3
            last = i + 3 if tokens[i + 2].string == "-" and i + 3 < len(tokens) else i + 2
            try:
                text = repr(float(tok.string) ** float("".join(t.string for t in tokens[i + 2:last + 1])))
            except (ValueError, OverflowError):
                continue
        before = tokens[first - 1] if first else None
        after = tokens[last + 1] if last + 1 < len(tokens) else None
        near_operator = (before is not None and before.string in OPERATORS) or (
            after is not None and after.string in OPERATORS)
        named = (before is not None and before.string == "=" and first >= 2 and tokens[first - 2].type == tokenize.NAME
                 and after is not None and after.type in (tokenize.NEWLINE, tokenize.ENDMARKER))
        if (near_operator and _is_factor(text, UNIT_FACTORS)) or (named and _is_factor(text, ASSIGNED_FACTORS)):
            found.append((tok.start[0], tok.line.strip()))
    return found


def _fstring_fields(literal: str) -> list[tuple[int, str]]:
    """Unit factors inside the replacement fields of one f-string literal."""
    import ast
    try:
        tree = ast.parse(literal, mode="eval")
    except SyntaxError:
        return []
    fields = [node.value for node in ast.walk(tree) if isinstance(node, ast.FormattedValue)]
    return [hit for field in fields for hit in literal_unit_factors(ast.unparse(field) + "\n")]


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_no_literal_unit_factor_in_solvers_and_engine(path):
    hits = [(line, text) for line, text in literal_unit_factors(path.read_text(encoding="utf-8"))
            if (path.name, text) not in ALLOWED]
    assert not hits, (f"{path.name} converts units by hand; take the unit from the sheet "
                      f"(units.sheet_quantity, solvers.quantities) or pint instead:\n"
                      + "\n".join(f"  line {line}: {text}" for line, text in hits))


def test_allow_list_entries_still_exist():
    for (name, line), why in ALLOWED.items():
        assert why, f"{name}: an allowed line needs a reason"
        source = next(p for p in SCANNED if p.name == name).read_text(encoding="utf-8")
        assert line in {x.strip() for x in source.splitlines()}, f"{name}: allowed line is gone: {line}"


@pytest.mark.parametrize("snippet, flagged", [
    ("y = x * 1e3", True), ("y = x / 1e9", True), ("y = 1e-9 * x", True), ("y = x / 3600.0", True),
    ("y = x * 86400", True), ("y = x * 3.6e6", True), ("y = x * 10 ** 9", True), ("y = x / 10**-3", True),
    ("gb = 1e-9", True), ("SECONDS_PER_DAY = 86400.0", True), ("x /= 1_000", True), ("y = x * 60", True),
    ("y = x * 2", False), ("f(lower=1e-9)", False), ("ANSWER_TOKENS = 100", False), ("y = x + 1e3", False),
    ('"""x / 1e9 in a docstring"""', False), ("y = x  # / 1e9 in a comment", False),
    ("y = f'{x / 1e9:.2f} GB'", True), ("y = f'{x:.2f} / 1e9'", False), ("y = x * 8", True),
])
def test_the_scan_finds_hand_factors_and_nothing_else(snippet, flagged):
    assert bool(literal_unit_factors(snippet + "\n")) is flagged


def test_scale_divides_by_the_exact_factor_towards_larger_units():
    # 1e9 is a double and 1e-9 is not: the quotient is correctly rounded, so the round trip is exact
    mul, div = scale("byte", "GB")
    assert (mul, div) == (1.0, 1e9)
    assert scale("s", "ms") == (1000.0, 1.0)
    assert 131072000.0 * mul / div == 0.131072
