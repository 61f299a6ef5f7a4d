"""`theanine setup-opencl`: installs a CPU OpenCL platform that builds kernels on this host, in
a private folder of this Python environment (nothing system-wide, no root needed).

The platform is the distribution's PoCL (Debian 12: PoCL 3.1 on LLVM 15), fetched with
`apt-get download` and unpacked with `dpkg-deb -x`, with the libraries it needs that the system
lacks. PyPI's PoCL (3.0-rc2, LLVM 14) rejects CPUs its LLVM does not know (AMD Zen 5: "unknown
target CPU 'generic'") and has no way to name another CPU; this PoCL honours POCL_LLVM_CPU_NAME,
so where the host's CPU is unknown to its LLVM the setup names the x86-64 level the CPU has.
Using the same platform on every host also means CI tests what every host runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from theanine.backends.opencl.loader import platform_home, read_platform

# PoCL's library package: Debian 12's name, then the 64-bit-time name later releases use
ROOT_PACKAGES = ("libpocl2", "libpocl2t64")
# Packages of the platform itself, always taken privately; other dependencies only when the
# system lacks them. The clang driver package is not needed: PoCL links kernels in-process.
_OWN = re.compile(r"pocl|llvm|clang-cpp|hwloc")
_SKIP = re.compile(r"^clang-\d+$")
# x86-64 micro-architecture levels with the /proc/cpuinfo flags each needs, best first
_LEVELS = [
    ("x86-64-v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
    ("x86-64-v3", {"avx2", "bmi1", "bmi2", "fma", "movbe", "f16c", "abm"}),
    ("x86-64-v2", {"sse4_2", "ssse3", "popcnt", "cx16"}),
]
PROBE_SOURCE = ("__kernel void th_probe(__global float *a) "
                "{ size_t i = get_global_id(0); a[i] = exp(a[i]) + 1.0f; }")


class SetupError(RuntimeError):
    """The platform could not be set up; the message says why and what to do."""


def _run(cmd: list[str], **kw) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    except FileNotFoundError:
        raise SetupError(f"{cmd[0]} not found: the OpenCL platform is fetched with Debian's "
                         "apt-get and dpkg-deb") from None
    if done.returncode != 0:
        raise SetupError(f"{' '.join(cmd[:3])} ... failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


class _Apt:
    """apt-get and apt-cache using the system's package lists, or private ones fetched into a
    temporary folder where the system has none (a fresh machine before `apt-get update`)."""

    def __init__(self, work: Path):
        self.options = ["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else []
        self.root = self._candidate()
        if self.root is None:
            lists, cache = work / "lists", work / "cache"
            for d in (lists / "partial", cache / "archives" / "partial"):
                d.mkdir(parents=True)
            self.options += ["-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={cache}"]
            _run(["apt-get", "-q", *self.options, "update"])
            self.root = self._candidate()
            if self.root is None:
                raise SetupError(f"no PoCL package ({' or '.join(ROOT_PACKAGES)}) in this "
                                 "system's package sources")

    def _candidate(self) -> str | None:
        """The first of ROOT_PACKAGES the package sources offer."""
        for name in ROOT_PACKAGES:
            out = _run(["apt-cache", *self.options, "policy", name])
            m = re.search(r"Candidate:\s*(\S+)", out)
            if m and m.group(1) != "(none)":
                return name
        return None

    def depends(self, packages: list[str], recurse: bool) -> list[str]:
        flags = ["--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                 "--no-replaces", "--no-enhances"] + (["--recurse"] if recurse else [])
        out = _run(["apt-cache", *self.options, "depends", *flags, *packages])
        names = re.findall(r"^\s+\|?(?:Pre)?Depends: ([^\s<>]+)", out, re.M)
        return list(dict.fromkeys(n.split(":")[0] for n in names))

    def download(self, packages: list[str], into: Path) -> None:
        _run(["apt-get", "-q", *self.options, "download", *packages], cwd=into)


def _installed() -> set[str]:
    try:
        out = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n"])
    except SetupError:
        return set()
    return {line.split()[1].split(":")[0] for line in out.splitlines()
            if line.startswith("ii ") and len(line.split()) > 1}


def _packages(apt: _Apt) -> list[str]:
    """The PoCL package and the packages it needs that must come privately."""
    direct = [p for p in apt.depends([apt.root], recurse=False) if not _SKIP.match(p)]
    own = [p for p in direct if _OWN.search(p)]
    installed = _installed()
    deeper = [p for p in apt.depends(own, recurse=True)
              if not _SKIP.match(p) and p not in installed and p not in own]
    return [apt.root, *own, *deeper]


def _private_libraries(root: Path) -> tuple[Path, list[str]]:
    """The ICD library and the shared libraries (one per soname) the platform brings."""
    icds = sorted(root.glob("usr/lib/*/libpocl.so.[0-9]"))
    if not icds:
        raise SetupError("the unpacked PoCL package has no libpocl.so.N")
    sonames: dict[str, str] = {}
    for path in sorted(root.rglob("lib*.so.*")):
        if re.fullmatch(r"lib.+\.so\.\d+", path.name) and "pocl" not in path.name \
                and path.parent.name != "pocl":
            sonames.setdefault(path.name, str(path.resolve()))
    return icds[0], _dependency_order(sonames)


def _dependency_order(sonames: dict[str, str]) -> list[str]:
    """The libraries ordered so each comes after the private ones it needs: loaded in this
    order, none pulls a second copy of a library from the system."""
    needs = {}
    for name, path in sonames.items():
        dynamic = _run(["readelf", "-d", path])
        needs[name] = [n for n in re.findall(r"\(NEEDED\).*\[(.+?)\]", dynamic) if n in sonames]
    order: list[str] = []
    pending = dict(needs)
    while pending:
        ready = [n for n, deps in pending.items() if all(d in order for d in deps)]
        if not ready:
            raise SetupError(f"circular library dependencies among {sorted(pending)}")
        for n in ready:
            order.append(n)
            del pending[n]
    return [sonames[n] for n in order]


def _check_links(icd: Path, libraries: list[str]) -> None:
    dirs = ":".join(dict.fromkeys(str(Path(p).parent) for p in libraries))
    out = _run(["ldd", str(icd)], env={**os.environ, "LD_LIBRARY_PATH": dirs})
    missing = re.findall(r"^\s*(\S+) => not found", out, re.M)
    if missing:
        raise SetupError(f"{icd.name} needs {', '.join(missing)}, which neither the system nor "
                         "the fetched packages provide")


def install(home: Path) -> dict:
    """Fetch, unpack and check the platform; returns its description (not yet probed)."""
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home, prefix=".setup-") as tmp:
        work = Path(tmp)
        apt = _Apt(work)
        debs = work / "debs"
        debs.mkdir()
        packages = _packages(apt)
        apt.download(packages, debs)
        staged = work / "root"
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(staged)])
        version = re.search(r"_([^_]+)_[^_]+\.deb$",
                            next(debs.glob(f"{apt.root}_*.deb")).name).group(1)
        final = home / f"pocl-{re.sub(r'[^A-Za-z0-9.+-]', '_', version)}"
        shutil.rmtree(final, ignore_errors=True)
        staged.rename(final)
    icd, libraries = _private_libraries(final)
    _check_links(icd, libraries)
    return {"name": f"PoCL {version} (Debian package, private copy)", "icd": str(icd),
            "preload": libraries, "packages": packages, "env": {}}


def cpu_flags() -> set[str]:
    """The host CPU's flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    return set(m.group(1).split()) if m else set()


def cpu_names(flags: set[str]) -> list[str]:
    """CPU names to offer PoCL's LLVM when it does not know the host's, best first: the
    x86-64 levels a CPU with `flags` has, then named CPUs of the v3 level in case this PoCL
    maps levels to no kernel library, then the baseline."""
    levels = [name for name, need in _LEVELS if need <= flags]
    named = ["znver3", "haswell"] if "x86-64-v3" in levels else []
    return [*levels, *named, "x86-64"]


_PROBE = r"""
import json, sys
meta = json.loads(sys.argv[1])
from theanine.backends.opencl.loader import preload
preload(meta["preload"])
import pyopencl as cl
from theanine.backends.opencl.runtime import probe_device
out = []
for p in cl.get_platforms():
    try:
        devices = p.get_devices(cl.device_type.CPU)
    except cl.Error:
        devices = []
    out += [{"platform": p.version, "device": d.name, "error": probe_device(d)} for d in devices]
print(json.dumps(out))
"""


def probe(meta: dict, vendors: Path, env: dict[str, str]) -> list[dict]:
    """The runtime's device probe (a one-line kernel built and run) on every CPU device the
    loader finds with `vendors` as its ICD folder, in a fresh process (a driver that crashes
    takes only the probe down; the environment set here reaches the driver)."""
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("POCL_")}
    run_env.update(env, OCL_ICD_VENDORS=str(vendors))
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(meta)],
                          capture_output=True, text=True, env=run_env, timeout=300)
    if done.returncode != 0:
        return [{"platform": "?", "device": "?",
                 "error": f"probe exited {done.returncode}: {done.stderr.strip()[-600:]}"}]
    return json.loads(done.stdout.splitlines()[-1])


def setup(force: bool = False, log=print) -> int:
    """Install (unless present and working) and probe the platform; 0 when some CPU OpenCL
    device builds kernels afterwards."""
    home = platform_home()
    meta = None if force else read_platform()
    if meta is not None:
        log(f"theanine setup-opencl: {meta['name']} is set up in {home}")
        return 0
    empty = home / "no-vendors"
    empty.mkdir(parents=True, exist_ok=True)
    baseline = probe({"preload": []}, empty, {})
    try:
        log("theanine setup-opencl: fetching PoCL from the system's package sources ...")
        meta = install(home)
    except SetupError as e:
        log(f"theanine setup-opencl: could not set up PoCL: {e}")
        return _fallback(baseline, log)
    ours_dir = home / "probe-vendors"
    ours_dir.mkdir(exist_ok=True)
    (ours_dir / "theanine-pocl.icd").write_text(meta["icd"] + "\n")
    known = {r["platform"] for r in baseline}
    for env in [{}, *({"POCL_LLVM_CPU_NAME": name} for name in cpu_names(cpu_flags()))]:
        mine = [r for r in probe(meta, ours_dir, env) if r["platform"] not in known]
        if mine and not mine[0]["error"]:
            meta.update(env=env, platform_version=mine[0]["platform"])
            tmp = home / f".platform.json.{os.getpid()}"
            tmp.write_text(json.dumps(meta, indent=1))
            tmp.replace(home / "platform.json")
            how = f" with {env}" if env else ""
            log(f"theanine setup-opencl: {meta['name']} builds kernels on "
                f"{mine[0]['device']}{how}; installed in {home}")
            return 0
        log(f"theanine setup-opencl: {meta['name']}{' with ' + str(env) if env else ''}: "
            f"{mine[0]['error'] if mine else 'no device found'}")
    return _fallback(baseline, log)


def _fallback(baseline: list[dict], log) -> int:
    working = [r for r in baseline if not r["error"]]
    if working:
        log(f"theanine setup-opencl: using {working[0]['platform']} on "
            f"{working[0]['device']}, which builds kernels here")
        return 0
    for r in baseline:
        log(f"  {r['platform']} ({r['device']}): {r['error']}")
    log("theanine setup-opencl: no CPU OpenCL device builds kernels on this host")
    return 1
