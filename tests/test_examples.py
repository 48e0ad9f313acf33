"""Every script in examples/ runs to completion and prints something (specific numbers are checked
in each wall's own tests)."""
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert out.returncode == 0, f"{script.name} failed:\n{out.stderr[-3000:]}"
    assert out.stdout.strip(), f"{script.name} printed nothing"
    assert "Traceback" not in out.stderr
