import warnings

import pytest

from mlsysim_opt.catalog import isolated
from mlsysim_opt.precision import PrecisionFallbackWarning


@pytest.fixture(autouse=True)
def _registry_isolation():
    # Records a test adds to the registry must not leak into the next test.
    with isolated():
        yield


@pytest.fixture(autouse=True)
def _quiet_fallbacks():
    # Fallback warnings are asserted where they matter (test_precision); elsewhere they are noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        yield
