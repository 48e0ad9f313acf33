"""Isolated environment for the reference implementation (mlsysim 0.3.0).

mlsysim must never be importable from the project's own environment, so it is
installed into a private venv next to this file and only ever driven through a
subprocess (`_ref_worker.py`), with JSON in and JSON out.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".ref-venv"
WORKER = HERE / "_ref_worker.py"
REFERENCE_REQUIREMENT = "mlsysim==0.3.0"


def _venv_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _has_reference(python: Path) -> bool:
    # Check the installed version, not just the venv's existence: a half-built
    # venv (interrupted pip) must be repaired rather than trusted.
    probe = "import importlib.metadata as m; print(m.version('mlsysim'))"
    r = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == REFERENCE_REQUIREMENT.split("==")[1]


_READY: dict[Path, str] = {}  # venvs already verified in this process


def ensure_reference_env(path: str | os.PathLike = DEFAULT_VENV) -> str:
    """Create the reference venv if needed and return its interpreter path."""
    path = Path(path).resolve()
    if path in _READY:
        return _READY[path]
    python = _venv_python(path)
    if python.exists() and _has_reference(python):
        _READY[path] = str(python)
        return str(python)
    print(f"[refenv] installing {REFERENCE_REQUIREMENT} into {path} ...", file=sys.stderr, flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check",
         REFERENCE_REQUIREMENT],
        check=True,
    )
    if not _has_reference(python):
        raise RuntimeError(f"{REFERENCE_REQUIREMENT} not importable in {path}")
    _READY[path] = str(python)
    return str(python)


def run_reference(script_name: str, payload: dict, *, timeout: float | None = 1800,
                  venv_path: str | os.PathLike = DEFAULT_VENV) -> dict:
    """Run the reference worker in its venv and return its parsed JSON answer.

    `script_name` is either a worker task name (e.g. "engine_solve_timing"),
    which is put into the payload as "task" unless the payload names one, or a
    script file in benchmarks/ (e.g. "_ref_worker.py") given a payload that
    already carries "task".
    """
    python = ensure_reference_env(venv_path)
    script = WORKER
    if script_name.endswith(".py"):
        script = HERE / script_name
    else:
        payload = {"task": script_name, **payload}
    # Run from a neutral directory with a clean PYTHONPATH so the project's own
    # package can never shadow or leak into the reference process.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONWARNINGS"] = "ignore"
    r = subprocess.run(
        [str(python), str(script)],
        input=json.dumps(payload), capture_output=True, text=True,
        timeout=timeout, cwd=str(Path(python).parent), env=env,
    )
    if r.returncode != 0:
        raise RuntimeError(f"reference worker failed ({r.returncode}):\n{r.stderr[-4000:]}")
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(f"reference worker wrote non-JSON output: {r.stdout[:500]!r}\n"
                           f"stderr: {r.stderr[-2000:]}") from exc
