"""Every code snippet of the tutorial runs with mlsysim_opt (``mlsysim`` replaced by
``mlsysim_opt``, deep imports by top-level ones) and prints what the exercise asks for."""
import contextlib
import io
import re

import pytest

from seeds.roofline_snippets import SNIPPETS as ROOFLINE
from seeds.walls_snippets import SNIPPETS as WALLS

ALL = ROOFLINE + WALLS


@pytest.mark.parametrize("name,source,expected", ALL, ids=[s[0] for s in ALL])
def test_snippet_runs_and_prints(name, source, expected):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, f"<seed {name}>", "exec"), {"__name__": f"seed_{name}"})  # noqa: S102 (test data)
    text = out.getvalue()
    for needle in expected:
        assert needle in text, f"{name}: {needle!r} not in output:\n{text}"
    assert not re.search(r"\bnan\b", text.lower()), f"{name} printed NaN:\n{text}"
