"""Another revision of this project, importable side by side: ``git archive`` of the revision into
a temporary folder, laid out as the installed package is (``models/``, ``formulations/`` and
``registry/`` as sub-packages of ``mlsysim_opt``), so a benchmark can time the same calls before
and after a change in one run. Only the source is taken; the dependencies are this environment's."""
from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("models", "formulations", "registry")


def export_revision(revision: str) -> Path:
    """A folder to put on PYTHONPATH so that ``import mlsysim_opt`` is ``revision``'s package."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True,
                             check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix=f"mlsysim_opt-{revision[:12].replace('/', '_')}-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    for name in SUBPACKAGES:
        if (folder / name).is_dir():
            shutil.move(str(folder / name), str(folder / "mlsysim_opt" / name))
    return folder


def describe(revision: str) -> str:
    out = subprocess.run(["git", "log", "-1", "--format=%h %s", revision], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or revision
