"""Test configuration: Hypothesis profiles ('ci' is fast and derandomized, 'thorough' is for
local runs: `THEANINE_HYPOTHESIS=thorough pytest`)."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=15, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("THEANINE_HYPOTHESIS", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_configure(config):
    """The project's run holds the CPU backends and OpenCL (PoCL's CPU device in CI; skipped
    with the reason where no OpenCL device is found) to the reference by default; CUDA has its
    own tests here and runs the whole kit with `--theanine-backend cuda`."""
    if config.getoption("theanine_backends", default=None) is None:
        config.option.theanine_backends = ["numpy", "c", "opencl"]
