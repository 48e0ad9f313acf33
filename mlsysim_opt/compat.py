"""The tutorial's deep import paths, as thin aliases of the real modules (one place for all of them).

The tutorial (``shared/seeds/``) imports from ``mlsysim.<deep path>``; with ``mlsysim`` renamed to
``mlsysim_opt`` every such line works, and each alias *is* the real module, so the classes are the
same objects (``mlsysim_opt.core.dse.DSE is mlsysim_opt.dse.DSE``):

==============================  ==========================================================
tutorial path (mlsysim_opt.)     real module
==============================  ==========================================================
``core``                        an empty container package (the tutorial's ``core/``)
``core.solver``                 :mod:`mlsysim_opt.solvers` (solver classes, see below)
``core.dse``                    :mod:`mlsysim_opt.dse`
``core.pipeline``               :mod:`mlsysim_opt.pipeline`
``core.constants``              :mod:`mlsysim_opt.units` (``Q_``, ``ureg``)
``core.units``                  :mod:`mlsysim_opt.units` (``TFLOPs``, ``GB``, ``second``, ...)
``engine.engine``               :mod:`mlsysim_opt.engine`
``hardware``                    an empty container package
``hardware.registry``           :mod:`mlsysim_opt.catalog` (``Hardware``)
``hardware.types``              :mod:`mlsysim_opt.types` (``HardwareNode``, ``ComputeCore``, ...)
``models.registry``             :mod:`mlsysim_opt.catalog` (``Models``)
``systems``                     an empty container package
``systems.registry``            :mod:`mlsysim_opt.catalog` (``Nodes``, ``Fabrics``, ``Systems``)
``systems.types``               :mod:`mlsysim_opt.types` (``Fleet``, ``Node``, ``NetworkFabric``)
``solvers``                     the real package; see below
==============================  ==========================================================

How each kind of path is served:

* Paths under a package (``core.*``, ``hardware.*``, ``systems.*``, ``models.registry``) are
  served by :class:`TutorialPathFinder`, an import hook appended to ``sys.meta_path``: a real module
  of the same name always wins, and nothing is imported until a tutorial path is. Loading an alias
  puts the real module itself in ``sys.modules`` under the tutorial name (the import system then
  returns it and binds it on the parent), so the real module keeps its own ``__name__`` and
  ``__spec__``. ``mlsysim_opt.models`` stays the equation-sheet package: its loader lists the
  sheet *files* (``pkgutil.iter_modules``), which an alias is not, so ``registry`` is never taken
  for a sheet. (``import mlsysim_opt`` still loads no sheet; ``models.registry``, like any
  submodule, imports its parent package first.)
* ``engine.engine``: ``mlsysim_opt.engine`` is a module, not a package, and Python never asks an
  import hook for a child of a module, so this one alias is registered in ``sys.modules`` (and
  bound as the attribute ``mlsysim_opt.engine.engine``) as soon as ``mlsysim_opt.engine`` is
  loaded: :class:`EngineAliasFinder` wraps that module's loader.
* ``solvers`` and ``core.solver``: the tutorial imports solver classes from the package itself
  (``from mlsysim.solvers import SensitivitySolver``); :data:`SOLVER_NAMES` (every public name of
  :mod:`mlsysim_opt` defined in ``solvers/`` or ``engine.py``: the ``*Model``, ``*Solver`` and
  ``*Optimizer`` classes, their results, ``Engine``, ``SingleNodeModel``) is served on first use
  by :mod:`mlsysim_opt.solvers` (its ``__getattr__``), which ``core.solver`` aliases.

``mlsysim_opt/__init__.py`` imports this module last. It loads nothing itself: the package's names
and these aliases are all imported on first use, so ``import mlsysim_opt`` stays light.
``tests/test_tutorial_paths.py`` checks every deep import line of the seeds and the identities.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

_PACKAGE = __name__.rpartition(".")[0]   # "mlsysim_opt"

#: tutorial path (below the package) -> real module it aliases; None: an empty container package.
TUTORIAL_PATHS: dict[str, str | None] = {
    "core": None,
    "core.solver": "solvers",
    "core.dse": "dse",
    "core.pipeline": "pipeline",
    "core.constants": "units",
    "core.units": "units",
    "engine.engine": "engine",
    "hardware": None,
    "hardware.registry": "catalog",
    "hardware.types": "types",
    "models.registry": "catalog",
    "systems": None,
    "systems.registry": "catalog",
    "systems.types": "types",
}


def _solver_names() -> tuple[str, ...]:
    """Public names of the package whose home is ``solvers/`` or ``engine.py`` (read from the
    package's table of exports: nothing is imported)."""
    package = sys.modules[_PACKAGE]
    return tuple(n for n in package.__all__
                 if package.EXPORTS[n][0].startswith("solvers.") or package.EXPORTS[n][0] == "engine")


#: Names served by ``mlsysim_opt.solvers`` (and so importable from ``core.solver``).
SOLVER_NAMES: tuple[str, ...] = _solver_names()


def _full(path: str) -> str:
    return f"{_PACKAGE}.{path}"


class TutorialPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads the tutorial paths of :data:`TUTORIAL_PATHS` that sit under a package."""

    def __init__(self) -> None:
        self.targets = {_full(path): (None if target is None else _full(target))
                        for path, target in TUTORIAL_PATHS.items() if path != "engine.engine"}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.targets:
            return None
        is_container = self.targets[fullname] is None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_container)

    def create_module(self, spec):
        return None   # the default module; an alias replaces it in exec_module

    def exec_module(self, module):
        name = module.__spec__.name
        target = self.targets[name]
        if target is None:
            module.__doc__ = f"Container for the tutorial paths under {name} (see {__name__})."
            return
        # The import system returns whatever sys.modules holds under the name once this returns.
        sys.modules[name] = importlib.import_module(target)


class EngineAliasFinder(importlib.abc.MetaPathFinder):
    """Registers ``mlsysim_opt.engine.engine`` the moment ``mlsysim_opt.engine`` is loaded.

    It answers for that one module (placed first in ``sys.meta_path``), finds it where the normal
    path finder would, and wraps its loader."""

    name = _full("engine")

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _BindAliasAfterLoad(spec.loader)
        return spec


class _BindAliasAfterLoad(importlib.abc.Loader):
    """The real loader of ``mlsysim_opt.engine``, then the alias (other attributes: the real one's,
    so tracebacks still find the source)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        _bind_engine_engine(module)

    def __getattr__(self, name):
        return getattr(self.loader, name)


def _bind_engine_engine(engine) -> None:
    sys.modules.setdefault(_full("engine.engine"), engine)
    if not hasattr(engine, "engine"):
        engine.engine = engine


def solver_attribute(name: str):
    """``mlsysim_opt.solvers.<name>`` for a name of :data:`SOLVER_NAMES`: the package's object."""
    return getattr(sys.modules[_PACKAGE], name)


def install() -> None:
    """Make every tutorial path importable (idempotent)."""
    if not any(isinstance(f, TutorialPathFinder) for f in sys.meta_path):
        sys.meta_path.append(TutorialPathFinder())
    if _full("engine") in sys.modules:
        _bind_engine_engine(sys.modules[_full("engine")])
    elif not any(isinstance(f, EngineAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, EngineAliasFinder())


install()
