"""Device names belong to backends: config.device, THEANINE_FLAGS=device=... and get_backend
accept exactly the names some registered backend accepts (its name, its `devices`, numbered
CUDA and OpenCL devices), and the runtimes parse exactly those."""

import os
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import theanine as th
from theanine.backend import Backend, backends, get_backend
from theanine.backends.cuda.runtime import parse_device as parse_cuda
from theanine.backends.opencl.runtime import parse_device as parse_opencl
from theanine.plugins import hookimpl

# The names the built-in backends accept, written out independently of their code.
BUILTIN = re.compile(r"(cpu|c|numpy|(cuda|gpu)(:?[0-9]+)?|opencl(:[0-9]+:[0-9]+)?)",
                     re.ASCII)
REJECTED = ["", "CPU", "tpu", "clang", "cpu0", "c0", "numpy:0", "cuda:", "gpu:", "cuda::1",
            "cuda:x", "cuda:-1", "cuda:1:2", "cuda1x", "cuda\u00b2", "cuda:\u0663",
            "opencl:", "opencl:1", "opencl:0:", "opencl:0:1:2", "opencl:\u0663:0", "opencl0",
            " cpu", "cpu ", "gpu 1"]


def accepted(device: str) -> bool:
    old = th.config.device
    try:
        th.config.device = device
    except ValueError as e:
        assert repr(device) in str(e) and "registered: " in str(e)
        return False
    th.config.device = old
    return True


def test_the_builtin_backends_are_registered():
    assert {"numpy", "c", "cuda", "opencl"} <= set(backends())


@pytest.mark.parametrize("device", ["cpu", "c", "numpy", "cuda", "gpu", "cuda:0", "cuda:3",
                                    "gpu:1", "cuda1", "gpu0", "gpu12", "opencl",
                                    "opencl:0:0", "opencl:1:12"])
def test_every_builtin_device_name_is_accepted(device):
    assert accepted(device)


@pytest.mark.parametrize("device", REJECTED)
def test_other_names_are_refused(device):
    assert not accepted(device)


def test_every_backend_accepts_the_names_it_lists():
    for name, b in backends().items():
        for form in b.device_names():
            for n in ("0", "7", "12"):
                device = form.replace("N", n).replace("P", n).replace("D", "0")
                assert b.accepts(device) and accepted(device), (name, device)


@given(st.one_of(st.text(alphabet="cpugdanoleym:01\u00b2 ", max_size=9),
                 st.builds(lambda a, b: a + b,
                           st.sampled_from(["cuda", "gpu", "opencl", "cpu", "numpy", "c"]),
                           st.text(alphabet=":0129x", max_size=5))))
def test_config_accepts_exactly_the_backends_names(device):
    """Nothing else: config agrees with an independent description of the built-in names,
    and each runtime parses exactly what its backend accepts."""
    assert accepted(device) == bool(BUILTIN.fullmatch(device))
    for kind, parse in (("cuda", parse_cuda), ("opencl", parse_opencl)):
        try:
            parse(device)
            parsed = True
        except ValueError:
            parsed = False
        assert parsed == backends()[kind].accepts(device), (kind, device)


def test_the_disagreements_of_issue_13_are_gone():
    # gpu:1 was refused by config though the CUDA runtime read it; cuda1 was accepted by
    # config though the runtime refused it (it is Theano's spelling: both read it now)
    for device in ("gpu:1", "cuda1", "gpu1", "cuda:1"):
        assert accepted(device) and parse_cuda(device) == 1
    assert parse_opencl("opencl:2:3") == (2, 3) and parse_opencl("opencl") is None


class _DeviceBackend(Backend):
    name = "test_devices"
    devices = ("test_dev",)

    def compile(self, fgraph):
        raise NotImplementedError


class _DevicePlugin:
    @hookimpl
    def theanine_register_backends(self, register):
        register(_DeviceBackend())


def test_a_plugin_backend_brings_its_own_device_names():
    from theanine.plugins.manager import get_plugin_state, reset_collected

    assert not accepted("test_dev")
    pm = get_plugin_state().pm
    pm.register(_DevicePlugin(), name="test-device-plugin")
    reset_collected()
    try:
        assert accepted("test_dev") and accepted("test_devices")
        assert get_backend("test_dev").name == "test_devices"
    finally:
        pm.unregister(name="test-device-plugin")
        reset_collected()
    assert not accepted("test_dev")


def _flags_run(flags: dict) -> subprocess.CompletedProcess:
    code = "import theanine as th; print(th.config.device)"
    env = {k: v for k, v in os.environ.items() if k not in ("THEANINE_FLAGS", "THEANO_FLAGS")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, **flags})


def test_flags_accept_backend_devices_and_name_the_variable_otherwise():
    for var in ("THEANINE_FLAGS", "THEANO_FLAGS"):
        for device in ("gpu:1", "cuda0", "opencl:0:1", "numpy"):
            out = _flags_run({var: f"device={device}"})
            assert out.returncode == 0 and out.stdout.split() == [device], out.stderr
        bad = _flags_run({var: "device=cuda:"})
        assert bad.returncode != 0
        assert f"ValueError: {var}: config.device must be a device or backend name" \
            in bad.stderr and "'cuda:'" in bad.stderr and "cuda:N" in bad.stderr
