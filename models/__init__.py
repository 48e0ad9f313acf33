"""Equation sheets, one per wall or family. Each file reads like the tutorial's equation slide:
the symbols (unit, meaning, source), then the equations.

Importing this package imports every sheet module, which registers its sheet in
``mlsysim_opt.symbolic.SHEETS``; ``tests/test_symbolic.py`` checks each module defines one."""
import importlib
import pkgutil

SHEET_MODULES = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
for _name in SHEET_MODULES:
    importlib.import_module(f"{__name__}.{_name}")
