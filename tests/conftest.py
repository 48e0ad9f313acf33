import warnings

import pytest

from mlsysim_opt.precision import PrecisionFallbackWarning


@pytest.fixture(autouse=True)
def _quiet_fallbacks():
    # Fallback warnings are asserted where they matter (test_precision); elsewhere they are noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        yield
