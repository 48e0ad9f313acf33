"""Each example script runs once per test run, as a user runs it (a fresh interpreter, an empty
working directory, its own output folder); every test that checks an example's output reads that
one run instead of starting the script again. Spread over several test processes (pytest-xdist),
the processes share the runs through a folder of the run (:func:`share_runs_in`): the first to need
a script runs it under a file lock and leaves its outcome there for the others."""
from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
_SCRATCH = Path(tempfile.mkdtemp(prefix="mlsysim-opt-examples-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
_shared = False


def share_runs_in(folder: Path) -> None:
    """Keep the runs in ``folder``, which every test process of this run sees (pytest's temporary
    folder of the run, which pytest cleans up)."""
    global _SCRATCH, _shared
    folder.mkdir(parents=True, exist_ok=True)
    _SCRATCH, _shared = folder, True


@dataclass(frozen=True)
class ExampleRun:
    script: Path
    returncode: int
    stdout: str
    stderr: str
    cwd: Path
    """The working directory it ran in (it must leave it empty)."""
    output: Path
    """The folder it was told to write into (MLSYSIM_OPT_OUTPUT)."""


_runs: dict[str, Future] = {}
_lock = threading.Lock()


def run_example(name: str) -> ExampleRun:
    """The script's one run in this test run: started here if nobody has started it yet, else awaited."""
    script = EXAMPLES / (name if name.endswith(".py") else f"{name}.py")
    with _lock:
        run = _runs.get(script.stem)
        mine = run is None
        if mine:
            run = _runs[script.stem] = Future()
    if mine:
        try:
            run.set_result(_run_shared(script) if _shared else _run(script))
        except BaseException as exc:   # a timeout, say: every test waiting for it sees the same error
            run.set_exception(exc)
    return run.result()


def prefetch(names: list[str]) -> None:
    """Run these examples one after another on a background thread: each is a separate process, so
    it uses the second core while the tests run in this one."""
    def work():
        for name in names:
            run_example(name)
    threading.Thread(target=work, name="example-prefetch", daemon=True).start()


def _run(script: Path) -> ExampleRun:
    cwd, output = _SCRATCH / script.stem / "cwd", _SCRATCH / script.stem / "output"
    cwd.mkdir(parents=True)
    env = {**os.environ, "MLSYSIM_OPT_OUTPUT": str(output)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=env)
    return ExampleRun(script, done.returncode, done.stdout, done.stderr, cwd, output)


def _run_shared(script: Path) -> ExampleRun:
    """The run another test process left for ``script``, else this process's own (kept for them)."""
    kept = _SCRATCH / f"{script.stem}.json"
    with open(_SCRATCH / f"{script.stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # held while the script runs: the others wait for it
        if not kept.exists():
            run = _run(script)
            kept.write_text(json.dumps({"returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr}))
            return run
    outcome = json.loads(kept.read_text())
    return ExampleRun(script, outcome["returncode"], outcome["stdout"], outcome["stderr"],
                      _SCRATCH / script.stem / "cwd", _SCRATCH / script.stem / "output")


def example_output(name: str) -> str:
    """What the example printed; fails the calling test with the script's error if it failed."""
    run = run_example(name)
    assert run.returncode == 0, f"{run.script.name} failed:\n{run.stderr[-3000:]}"
    return run.stdout
