"""Every script in examples/ runs to completion and prints something (specific numbers are checked
in each wall's own tests).

Each script runs in a child forked from the test process, which has imported the package once:
the child is as isolated as a new interpreter (its own registry, its own working directory) without
paying the imports again for each of thirty scripts."""
import os
import pathlib
import runpy
import signal
import sys
import traceback

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
TIMEOUT_S = 600


def _run_forked(script: pathlib.Path, cwd: pathlib.Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``script`` run as ``__main__`` in a forked child."""
    import mlsysim_opt  # noqa: F401  (imported before the fork, once)
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    pid = os.fork()
    if pid == 0:   # the child: never returns into pytest
        code = 1
        try:
            os.chdir(cwd)
            signal.alarm(TIMEOUT_S)
            for fd, path in ((1, out), (2, err)):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            sys.argv = [str(script)]
            runpy.run_path(str(script), run_name="__main__")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code, out.read_text(errors="replace"), err.read_text(errors="replace")


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    code, stdout, stderr = _run_forked(script, tmp_path)
    assert code == 0, f"{script.name} failed ({code}):\n{stderr[-3000:]}"
    assert stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in stderr
