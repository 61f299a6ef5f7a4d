"""OpenCL platforms and device choice: a device is usable only when it builds a kernel, the CPU
platform `theanine setup-opencl` installs, and how theanine points the ICD loader at it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from theanine.backends.opencl import loader, platform_setup, runtime
from theanine.backends.opencl.backend import OpenCLBackend

pytest.importorskip("pyopencl")


def _fake_device(name: str, version: str, gpu: bool = False):
    cl = runtime.import_cl()
    kind = cl.device_type.GPU if gpu else cl.device_type.CPU
    return SimpleNamespace(name=name, type=kind, max_compute_units=2, extensions="cl_khr_fp64",
                           platform=SimpleNamespace(name="Fake", version=version))


@pytest.fixture
def fake_devices(monkeypatch):
    """Two CPU devices; the first fails to build as PyPI's PoCL does on AMD Zen 5."""
    broken = _fake_device("pthread-broken", "OpenCL 3.0 PoCL 3.0-rc2 LLVM 14")
    good = _fake_device("pthread-good", "OpenCL 3.0 PoCL 3.1 LLVM 15")
    message = "RuntimeError: clBuildProgram failed: error: unknown target CPU 'generic'"
    monkeypatch.setattr(runtime, "list_devices", lambda: [(0, 0, broken), (1, 0, good)])
    monkeypatch.setattr(runtime, "probe_device", lambda dev: message if dev is broken else "")
    monkeypatch.setattr(runtime, "_problems", {})
    import theanine.backends.opencl.backend as backend_module

    monkeypatch.setattr(backend_module, "list_devices", runtime.list_devices)
    return broken, good, message


def test_a_device_that_cannot_build_is_reported_not_chosen(fake_devices):
    broken, good, message = fake_devices
    entry, why = runtime.default_device()
    assert entry[2] is good and "builds kernels" in why
    with pytest.raises(RuntimeError, match="opencl:0:0 .*cannot build kernels: .*unknown "
                                           "target CPU 'generic'.*theanine setup-opencl"):
        runtime.pick_device("opencl:0:0")
    assert runtime.pick_device("opencl:1:0")[2] is good
    text = "\n".join(OpenCLBackend().describe())
    assert f"device opencl:0:0: pthread-broken (OpenCL 3.0 PoCL 3.0-rc2 LLVM 14, 2 compute " \
           f"units, fp64): UNUSABLE: {message}" in text
    assert "device opencl:1:0: pthread-good" in text and "in use: opencl:1:0 (pthread-good)" \
        in text


def test_no_device_that_builds_makes_the_backend_unavailable(fake_devices, monkeypatch):
    broken, good, message = fake_devices
    monkeypatch.setattr(runtime, "probe_device", lambda dev: message)
    ok, why = OpenCLBackend().available()
    assert not ok
    assert "no OpenCL device can build kernels here" in why and "unknown target CPU" in why
    assert "in use: none" in "\n".join(OpenCLBackend().describe())


def test_gpus_come_first_then_the_set_up_platform(fake_devices, monkeypatch):
    broken, good, _ = fake_devices
    gpu = _fake_device("gpu", "OpenCL 3.0 CUDA", gpu=True)
    monkeypatch.setattr(runtime, "list_devices", lambda: [(0, 0, broken), (1, 0, good),
                                                          (2, 0, gpu)])
    assert runtime.default_device() == ((2, 0, gpu), "the first GPU that builds kernels")
    monkeypatch.setattr(runtime, "is_setup_platform", lambda dev: dev is good)
    monkeypatch.setattr(runtime, "probe_device", lambda dev: "broken" if dev is gpu else "")
    monkeypatch.setattr(runtime, "_problems", {})
    (_, _, dev), why = runtime.default_device()
    assert dev is good and "theanine setup-opencl" in why


def test_a_real_build_failure_is_caught_by_the_probe(monkeypatch):
    ok, why = OpenCLBackend().available()
    if not ok:
        pytest.skip(f"OpenCL backend unavailable: {why}")
    entry, _ = runtime.default_device()
    monkeypatch.setattr(platform_setup, "PROBE_SOURCE", "__kernel void th_probe( { syntax }")
    problem = runtime.probe_device(entry[2])
    assert "BUILD_PROGRAM_FAILURE" in problem or "build" in problem.lower()


def test_loader_keeps_the_system_icds_beside_its_own(tmp_path, monkeypatch):
    system = tmp_path / "system"
    system.mkdir()
    (system / "nvidia.icd").write_text("libnvidia-opencl.so.1\n")
    monkeypatch.setenv("OPENCL_VENDOR_PATH", str(system))
    monkeypatch.setenv("THEANINE_OPENCL_HOME", str(tmp_path / "home"))
    folder = loader.vendors_dir("/opt/pocl/libpocl.so.2")
    files = {p.name: p.read_text() for p in folder.glob("*.icd")}
    assert files == {"theanine-pocl.icd": "/opt/pocl/libpocl.so.2\n",
                     "system-nvidia.icd": "libnvidia-opencl.so.1\n"}
    (system / "nvidia.icd").unlink()
    assert [p.name for p in loader.vendors_dir("/opt/pocl/libpocl.so.2").glob("*.icd")] == \
        ["theanine-pocl.icd"]


_SHOW_STATE = ("import json, os; from theanine.backends.opencl import loader; s = "
               "loader.configure(); print(json.dumps([s.icd_library, s.notes, "
               "os.environ.get('OCL_ICD_VENDORS'), os.environ.get('POCL_LLVM_CPU_NAME')]))")


def _configure_in_new_process(home: Path, **env) -> list:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OCL_ICD_VENDORS", "POCL_LLVM_CPU_NAME")}
    out = subprocess.run([sys.executable, "-c", _SHOW_STATE], capture_output=True, text=True,
                         env={**clean, "THEANINE_OPENCL_HOME": str(home), **env}, check=True)
    return json.loads(out.stdout)


def test_loader_applies_the_platform_unless_the_user_chose(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    icd = tmp_path / "libpocl.so.2"
    icd.write_bytes(b"")
    (home / "platform.json").write_text(json.dumps({
        "name": "test PoCL", "icd": str(icd), "preload": [],
        "env": {"POCL_LLVM_CPU_NAME": "x86-64-v3"}}))
    lib, notes, vendors, cpu = _configure_in_new_process(home)
    assert lib == str(icd) and notes == [] and cpu == "x86-64-v3"
    assert (Path(vendors) / "theanine-pocl.icd").read_text() == f"{icd}\n"
    lib, notes, vendors, cpu = _configure_in_new_process(home, POCL_LLVM_CPU_NAME="znver3")
    assert lib == str(icd) and cpu == "znver3"
    assert notes == ["POCL_LLVM_CPU_NAME=znver3 from the environment (the set-up platform "
                     "suggests x86-64-v3)"]
    lib, notes, vendors, cpu = _configure_in_new_process(home, OCL_ICD_VENDORS="/my/vendors")
    assert lib is None and vendors == "/my/vendors" and cpu is None  # the user's PoCL untouched
    assert notes == ["OCL_ICD_VENDORS=/my/vendors from the environment: theanine's PoCL is "
                     "not added"]
    (home / "platform.json").write_text("{broken")  # a damaged description is ignored
    assert _configure_in_new_process(home)[0] is None


def test_cpu_names_follow_the_flags():
    zen5 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "avx2", "bmi1", "bmi2",
            "fma", "movbe", "f16c", "abm", "sse4_2", "ssse3", "popcnt", "cx16"}
    assert platform_setup.cpu_names(zen5) == ["x86-64-v4", "x86-64-v3", "x86-64-v2", "znver3",
                                              "haswell", "x86-64"]
    assert platform_setup.cpu_names({"sse4_2", "ssse3", "popcnt", "cx16"}) == ["x86-64-v2",
                                                                               "x86-64"]


def test_setup_names_a_cpu_when_the_default_one_fails(tmp_path, monkeypatch):
    """Debian's PoCL on a CPU its LLVM does not know: the first probe fails, a named x86-64
    level builds, and that name is kept for every later process."""
    monkeypatch.setenv("THEANINE_OPENCL_HOME", str(tmp_path))
    icd = tmp_path / "libpocl.so.2"
    icd.write_bytes(b"")
    monkeypatch.setattr(platform_setup, "install", lambda home: {
        "name": "test PoCL", "icd": str(icd), "preload": [], "env": {}})
    monkeypatch.setattr(platform_setup, "cpu_flags", lambda: {"sse4_2", "ssse3", "popcnt",
                                                              "cx16"})
    pypi = {"platform": "PoCL 3.0-rc2", "device": "cpu", "error": "unknown target CPU"}
    tried = []

    def probe(meta, vendors, env):
        tried.append(env)
        if not meta["preload"] and "theanine-pocl.icd" not in os.listdir(vendors):
            return [pypi]
        ok = env == {"POCL_LLVM_CPU_NAME": "x86-64-v2"}
        return [pypi, {"platform": "PoCL 3.1", "device": "cpu",
                       "error": "" if ok else "unknown target CPU 'generic'"}]

    monkeypatch.setattr(platform_setup, "probe", probe)
    lines = []
    assert platform_setup.setup(log=lines.append) == 0
    assert tried[1:] == [{}, {"POCL_LLVM_CPU_NAME": "x86-64-v2"}]
    meta = json.loads((tmp_path / "platform.json").read_text())
    assert meta["env"] == {"POCL_LLVM_CPU_NAME": "x86-64-v2"}
    assert meta["platform_version"] == "PoCL 3.1"
    assert "builds kernels on cpu with {'POCL_LLVM_CPU_NAME': 'x86-64-v2'}" in lines[-1]
    assert platform_setup.setup(log=lines.append) == 0 and "is set up" in lines[-1]


def test_setup_reports_failure_when_nothing_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("THEANINE_OPENCL_HOME", str(tmp_path))

    def no_apt(home):
        raise platform_setup.SetupError("apt-get not found")

    monkeypatch.setattr(platform_setup, "install", no_apt)
    monkeypatch.setattr(platform_setup, "probe", lambda meta, vendors, env: [
        {"platform": "PoCL 3.0-rc2", "device": "cpu", "error": "unknown target CPU 'generic'"}])
    lines = []
    assert platform_setup.setup(log=lines.append) == 1
    assert any("apt-get not found" in line for line in lines)
    assert any("unknown target CPU 'generic'" in line for line in lines)
    assert not (tmp_path / "platform.json").exists()


def _installed_platform() -> dict:
    meta = loader.read_platform()
    if meta is None:
        if shutil.which("apt-get") and os.environ.get("CI"):
            pytest.fail("`make test` ran `theanine setup-opencl`, but no platform is set up in "
                        f"{loader.platform_home()}")
        pytest.skip("no platform set up by `theanine setup-opencl` here")
    return meta


def test_the_set_up_platform_is_the_one_in_use():
    """Where `make test` set up PoCL (Debian hosts), it is what 'opencl' runs on, and `theanine
    info` says so and why."""
    meta = _installed_platform()
    (_, _, dev), why = runtime.default_device()
    assert dev.platform.version == meta["platform_version"]
    assert "set up by `theanine setup-opencl`" in why
    from theanine.info import info_lines

    text = "\n".join(info_lines())
    assert f"platform set up by `theanine setup-opencl`: {meta['name']}" in text
    assert "in use: opencl:" in text and "builds kernels here" in text


def test_private_libraries_load_after_what_they_need():
    """Loaded in the recorded order, no private library pulls a system copy of another."""
    meta = _installed_platform()
    names = [Path(p).name for p in meta["preload"]]
    for i, path in enumerate(meta["preload"]):
        dynamic = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
        for needed in (line.split("[")[1].rstrip("]") for line in dynamic.splitlines()
                       if "(NEEDED)" in line):
            private = [j for j, n in enumerate(names) if n.startswith(needed)]
            assert all(j < i for j in private), f"{path} needs {needed}, loaded later"
