"""The tutorial's deep import paths exist under mlsysim_opt as aliases of the real modules
(``mlsysim_opt/compat.py``), and every code snippet of ``shared/seeds/`` runs with only the rename
``mlsysim`` -> ``mlsysim_opt``.

How the snippets run: ``tests/seeds/verbatim_snippets.py`` holds each seed code block verbatim (rename
only). What a seed leaves to the reader is completed by the entry's ``fill_ins``, applied in order:
``(old, new, why)`` replaces ``old`` once (an empty ``old`` prepends ``new``: a definition an earlier
slide made), and ``INDENT`` re-indents the blocks of seeds whose text lost its leading whitespace
(a line ending in ``:`` opens a block that runs to the end of the snippet or through a ``return``).
A snippet must run, print something when it has a ``print``, and never print NaN.

The seeds folder is not part of the repository (CI runs on a clean clone): the deep import lines are
stored below, and are compared with the seeds only when the folder exists, as the blocks are.
"""
import contextlib
import importlib
import io
import pathlib
import re
import subprocess
import sys
import tokenize

import pytest

import mlsysim_opt
from mlsysim_opt import compat
from seeds import verbatim_snippets
from seeds.verbatim_snippets import INDENT, SNIPPETS

SEEDS = pathlib.Path(__file__).resolve().parents[2] / "shared" / "seeds"

#: Every deep import statement of the seeds (``from mlsysim.<path> import ...``), renamed.
DEEP_IMPORTS = [
    "from mlsysim_opt.core.constants import Q_",
    "from mlsysim_opt.core.dse import DSE",
    "from mlsysim_opt.core.pipeline import Pipeline",
    "from mlsysim_opt.core.solver import (\nScalingModel, DistributedModel, EconomicsModel)",
    "from mlsysim_opt.core.solver import DistributedModel, EconomicsModel",
    "from mlsysim_opt.core.units import Q_",
    "from mlsysim_opt.core.units import TFLOPs, GB, TB, second, watt",
    "from mlsysim_opt.engine.engine import Engine",
    "from mlsysim_opt.hardware.registry import Hardware",
    "from mlsysim_opt.hardware.types import HardwareNode, ComputeCore, MemoryHierarchy",
    "from mlsysim_opt.models.registry import Models",
    "from mlsysim_opt.solvers import SensitivitySolver",
    "from mlsysim_opt.solvers import SynthesisSolver",
    "from mlsysim_opt.systems.registry import Nodes, Fabrics",
    "from mlsysim_opt.systems.types import Fleet",
    "from mlsysim_opt.systems.types import Fleet, Node, NetworkFabric",
]

#: Each tutorial path and the real module it is.
REAL = {
    "core.solver": "solvers", "core.dse": "dse", "core.pipeline": "pipeline", "core.constants": "units",
    "core.units": "units", "engine.engine": "engine", "hardware.registry": "catalog",
    "hardware.types": "types", "models.registry": "catalog", "systems.registry": "catalog",
    "systems.types": "types",
}


def _seed_deep_imports() -> set[str]:
    found = set()
    for path in sorted(SEEDS.iterdir()):
        text = path.read_text()
        for match in re.finditer(r"^from mlsysim\.[\w.]+ import (\([^)]*\)|[\w, ]*?\w(?=\d+\. |\s*$))", text, re.M):
            found.add(match.group(0).replace("mlsysim", "mlsysim_opt"))
    return found


def _run_fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=True).stdout


# ---------------------------------------------------------------------------------------------- paths

@pytest.mark.parametrize("line", DEEP_IMPORTS)
def test_every_deep_import_line_of_the_seeds_imports(line):
    namespace: dict = {}
    exec(compile(line, "<deep import>", "exec"), namespace)  # noqa: S102 (test data)
    module = importlib.import_module(line.split()[1])
    names = [n for n in re.split(r"[\s,()]+", line.split(" import ", 1)[1]) if n]
    for name in names:
        assert namespace[name] is getattr(module, name)


def check_stored_import_lines_against_seeds():
    """The import lines stored above are the seeds' own (run by hand: see the end of this file)."""
    assert _seed_deep_imports() == set(DEEP_IMPORTS)


def test_the_documented_mapping_is_the_tested_one():
    assert {p: t for p, t in compat.TUTORIAL_PATHS.items() if t is not None} == REAL


@pytest.mark.parametrize("path,real", sorted(REAL.items()))
def test_each_alias_is_the_real_module(path, real):
    alias = importlib.import_module(f"mlsysim_opt.{path}")
    assert alias is importlib.import_module(f"mlsysim_opt.{real}")
    assert alias.__name__ == f"mlsysim_opt.{real}"   # the real module keeps its own name and spec
    parent, _, child = path.rpartition(".")
    assert getattr(importlib.import_module(f"mlsysim_opt.{parent}"), child) is alias


def test_aliased_names_are_the_package_objects():
    from mlsysim_opt.core.constants import Q_ as constants_q
    from mlsysim_opt.core.solver import DistributedModel, EconomicsModel, ScalingModel
    from mlsysim_opt.core.units import GB, TFLOPs, Q_, second, watt
    from mlsysim_opt.engine.engine import Engine
    from mlsysim_opt.hardware.registry import Hardware
    from mlsysim_opt.models.registry import Models
    from mlsysim_opt.solvers import SensitivitySolver, SynthesisSolver
    from mlsysim_opt.systems.types import Fleet

    assert (DistributedModel, EconomicsModel, ScalingModel) == (
        mlsysim_opt.DistributedModel, mlsysim_opt.EconomicsModel, mlsysim_opt.ScalingModel)
    assert Engine is mlsysim_opt.Engine and Hardware is mlsysim_opt.Hardware and Models is mlsysim_opt.Models
    assert SensitivitySolver is mlsysim_opt.SensitivitySolver and SynthesisSolver is mlsysim_opt.SynthesisSolver
    assert Fleet is mlsysim_opt.Fleet and Q_ is constants_q is mlsysim_opt.Q_
    assert (TFLOPs, GB, second, watt) == (mlsysim_opt.TFLOPs, mlsysim_opt.GB, mlsysim_opt.second, mlsysim_opt.watt)
    assert (1200 * TFLOPs / second)._REGISTRY is mlsysim_opt.ureg   # one unit registry
    for name in compat.SOLVER_NAMES:
        assert getattr(mlsysim_opt.solvers, name) is getattr(mlsysim_opt, name)


def test_models_stays_the_sheet_package_and_engine_the_module():
    import mlsysim_opt.models as models
    import mlsysim_opt.models.registry  # noqa: F401

    assert "registry" not in models.SHEET_MODULES
    assert models.registry is mlsysim_opt.catalog
    assert mlsysim_opt.engine.Engine is mlsysim_opt.Engine
    assert mlsysim_opt.engine.engine is mlsysim_opt.engine


def test_deep_paths_work_in_a_fresh_interpreter_and_load_nothing_extra():
    code = ("import sys\n"
            "from mlsysim_opt.engine.engine import Engine\n"
            "import mlsysim_opt.core.dse, mlsysim_opt.systems.types\n"
            "print(mlsysim_opt.core.dse.DSE.__name__, mlsysim_opt.systems.types.Fleet.__name__,"
            " 'mlsysim_opt.models' in sys.modules, 'pyomo' in sys.modules)\n"
            "from mlsysim_opt.models.registry import Models\n"
            "print(Models.Llama3_8B is mlsysim_opt.Models.Llama3_8B)")
    assert _run_fresh(code).split() == ["DSE", "Fleet", "False", "False", "True"]


def test_unknown_deep_paths_still_fail():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("mlsysim_opt.core.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("mlsysim_opt.hardware.no_such_module")


# ------------------------------------------------------------------------------------------- snippets

def reindent(source: str) -> str:
    """Indent flush-left code: a logical line ending in ``:`` opens a block that lasts to the end,
    or up to and including a ``return`` line."""
    lines = [line.lstrip() for line in source.split("\n")]
    text = "\n".join(lines)
    logical: list[tuple[int, int, str, str]] = []   # first row, last row, first token, last token
    start = first = last = None
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NEWLINE:
            logical.append((start, tok.start[0], first, last))
            start = None
            continue
        if start is None:
            start, first = tok.start[0], tok.string
        last = tok.string
    level_of_row = {}
    level = 0
    for first_row, last_row, first_token, last_token in logical:
        for row in range(first_row, last_row + 1):
            level_of_row[row] = level
        if last_token == ":":
            level += 1
        elif first_token == "return":
            level = max(0, level - 1)
    out = []
    for row, line in enumerate(lines, start=1):
        if row not in level_of_row:   # a comment or blank line: the level of the code that follows
            level_of_row[row] = next((level_of_row[r] for r in range(row + 1, len(lines) + 1)
                                      if r in level_of_row), level)
        out.append("    " * level_of_row[row] + line if line else line)
    return "\n".join(out)


def test_reindent_opens_blocks_at_colons_and_closes_them_after_return():
    flush = "def f(x):\ny = (x +\n1)\n# done\nreturn y\n# next\nfor i in [1]:\nprint(f(i))"
    assert reindent(flush) == ("def f(x):\n    y = (x +\n    1)\n    # done\n    return y\n# next\n"
                               "for i in [1]:\n    print(f(i))")


def prepare(source: str, fill_ins) -> str:
    reindent_after = False
    for fill in fill_ins:
        if fill == INDENT:
            reindent_after = True
            continue
        old, new, why = fill
        assert why
        if old:
            assert source.count(old) == 1, f"fill-in target {old!r} is not in the snippet once"
            source = source.replace(old, new)
        else:
            source = new + source
    return reindent(source) if reindent_after else source


@pytest.mark.parametrize("name,source,fill_ins", SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_seed_snippet_runs_verbatim(name, source, fill_ins):
    code = prepare(source, fill_ins)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"<seed {name}>", "exec"), {"__name__": f"seed_{name}"})  # noqa: S102 (test data)
    text = out.getvalue()
    if "print(" in code:
        assert text.strip(), f"{name} printed nothing"
    assert not re.search(r"\bnan\b", text.lower()), f"{name} printed NaN:\n{text}"


def test_every_block_is_run_and_every_snippet_uses_only_the_rename():
    blocks = {n: v for n, v in vars(verbatim_snippets).items() if n in verbatim_snippets.BLOCK_SEEDS}
    assert set(blocks) == set(verbatim_snippets.BLOCK_SEEDS)
    joined = "\n".join(source for _, source, _ in SNIPPETS)
    assert all(block in joined for block in blocks.values())
    for name, source, _ in SNIPPETS:
        assert re.search(r"\bmlsysim\b", source) is None, name


def check_blocks_against_seeds():
    """Every stored block is verbatim in its seed, and every seed block is stored (run by hand)."""
    def norm(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.split("\n"))

    blocks = {n: v for n, v in vars(verbatim_snippets).items() if n in verbatim_snippets.BLOCK_SEEDS}
    for name, block in blocks.items():
        seed = (SEEDS / verbatim_snippets.BLOCK_SEEDS[name]).read_text()
        assert norm(block.replace("mlsysim_opt", "mlsysim")) in norm(seed), name
    deck = (SEEDS / "afternoon-deck.tex").read_text()
    listings = re.findall(r"\\begin\{lstlisting\}\n(.*?)\n\\end\{lstlisting\}", deck, re.S)
    fences = [f for p in ("module1-foundations.txt", "module4-dse-synthesis.txt")
              for f in re.findall(r"```\n(.*?)\n```", (SEEDS / p).read_text(), re.S)]
    stored = {norm(b.replace("mlsysim_opt", "mlsysim")) for b in blocks.values()}
    assert {norm(b) for b in listings + fences} <= stored


if __name__ == "__main__":
    # The stored data against the seeds themselves, where they sit next to the checkout (a clean
    # clone has no ../shared/seeds, so this is a maintenance check, not a test):
    #     python tests/test_tutorial_paths.py
    check_stored_import_lines_against_seeds()
    check_blocks_against_seeds()
    print(f"the stored import lines and blocks match {SEEDS}")
