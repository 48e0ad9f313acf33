"""``python -m mlsysim_opt.dashboards._serve run ...``: marimo's command line, with the modules its
kernels import lazily imported first.

Sessions of one server run their kernels in threads of this process. After each cell a kernel
closes matplotlib figures through ``marimo._output.mpl``, importing it on first use; two sessions
starting together (a gallery opened in several tabs) can then meet it half-imported and fail every
cell ("cannot access submodule 'mpl' of module 'marimo._output'"). Imported here, before any
kernel starts, it is whole for all of them.
"""
import marimo._output.mpl  # noqa: F401  (see above)
from marimo._cli.cli import main

if __name__ == "__main__":
    main(prog_name="marimo")
