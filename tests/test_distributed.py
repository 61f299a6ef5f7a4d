"""theanine.distributed: alone (a process without a launcher is a job of one) and under
`mpiexec -n 2` on localhost (tests/distributed/worker.py is each rank): data-parallel SGD
against one process on the whole batch, the helpers, disagreeing ranks, a rank that raises,
one killed outright and one that goes silent."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine import distributed as dist
from theanine.backend import backends
from theanine.distributed.buckets import buckets
from theanine.graph.basic import GraphError

HERE = Path(__file__).parent / "distributed"
sys.path.insert(0, str(HERE))
from mlp import STEPS, mlp_data, sgd_params, sgd_step  # noqa: E402

BACKENDS = ["numpy", "c"] + (["opencl"] if backends()["opencl"].available()[0] else [])
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def _mpi_missing() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install 'theanine[distributed]')"
    return None if MPIEXEC else "no mpiexec (pip install 'theanine[distributed]' brings MPICH's)"


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


# -- a job of one ----------------------------------------------------------------------------
def test_alone_is_a_job_of_one():
    assert not dist.launched()
    assert (dist.rank(), dist.size(), dist.local_rank()) == (0, 1, 0)
    assert dist.allgather_object({"a": 1}) == [{"a": 1}]
    dist.barrier()


@pytest.mark.parametrize("backend", BACKENDS)
def test_alone_allreduce_is_the_identity_in_the_step(backend):
    x = T.dmatrix("x")
    W = th.shared(np.arange(6.0).reshape(3, 2), name="W")
    cost = T.sum(T.tanh(T.dot(x, W)) ** 2)
    g = T.grad(cost, W)
    (gm,) = dist.allreduce([g])
    f = th.function([x], [gm, dist.allreduce(T.cast(x, "int32"), op="sum")], backend=backend)
    xv = np.linspace(-1, 1, 12).reshape(4, 3)
    want_g = th.function([x], g, backend="numpy")(xv)
    got_g, got_i = f(xv)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-12)
    np.testing.assert_array_equal(got_i, xv.astype(np.int32))


def test_allreduce_gradient_is_an_allreduce():
    x = T.dvector("x")
    y = dist.allreduce(x, op="sum")
    g = T.grad(T.sum(y * T.arange(3)), x)
    assert any(isinstance(n.op, dist.AllReduce) for n in th.function([x], g).fgraph.nodes)
    np.testing.assert_allclose(g.eval({x: np.ones(3)}), [0.0, 1.0, 2.0])


def test_allreduce_is_not_constant_folded():
    f = th.function([], dist.allreduce(T.constant(np.ones(3))), backend="c")
    assert any(isinstance(n.op, dist.AllReduce) for n in f.fgraph.nodes)
    np.testing.assert_array_equal(f(), np.ones(3))


def test_allreduce_errors_name_the_input():
    with pytest.raises(GraphError, match=r"variable 1 \(k\) must be a float, got dtype int64"):
        dist.allreduce([T.dvector("v"), T.lvector("k")])
    with pytest.raises(ValueError, match="op must be 'mean' or 'sum', got 'max'"):
        dist.allreduce(T.dvector(), op="max")


def test_buckets_group_by_dtype_within_the_limit():
    arrays = [np.zeros(10), np.zeros(10, np.float32), np.zeros(10), np.zeros(30), np.zeros(5)]
    assert buckets(arrays, limit=200) == [[0, 2], [1], [3], [4]]
    assert buckets(arrays, limit=10 ** 6) == [[0, 2, 3, 4], [1]]


def test_shard_splits_in_rank_order():
    parts = [dist.shard(np.arange(11), rank=r, size=3) for r in range(3)]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(11))
    assert [len(p) for p in parts] == [4, 4, 3]
    x, y = dist.shard(np.arange(8), np.arange(8) * 2, rank=1, size=2, even=True)
    np.testing.assert_array_equal(y, 2 * x)
    with pytest.raises(ValueError, match="10 items do not split evenly among 3 ranks"):
        dist.shard(np.arange(10), rank=0, size=3, even=True)
    with pytest.raises(ValueError, match=r"same first length, got \[3, 4\]"):
        dist.shard(np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="rank must be in"):
        dist.shard_slice(5, rank=2, size=2)


def test_broadcast_shared_alone_keeps_values():
    W = th.shared(np.ones(3), name="W")
    dist.broadcast_shared([W])
    np.testing.assert_array_equal(W.get_value(), np.ones(3))
    with pytest.raises(ValueError, match=r"root must be a rank in \[0, 1\), got 1"):
        dist.broadcast_shared([W], root=1)


def test_every_table_runs_allreduce():
    from theanine.backends.cpu_c.library import c_impl
    from theanine.backends.numpy.library import numpy_impl
    from theanine.gpu.library import gpu_impl

    for table in (numpy_impl, c_impl, gpu_impl):
        entry = table.lookup(dist.AllReduce)
        assert entry is not None and entry.op_class is dist.AllReduce, table.backend


def test_cuda_table_uses_nccl_only_when_launched_with_nccl():
    from theanine.backends.cuda import nccl
    from theanine.backends.cuda.backend import CUDABackend
    from theanine.gpu.library import HOST_PLAN

    entry = CUDABackend.impls.lookup(dist.AllReduce)
    assert entry is not None and entry.op_class is dist.AllReduce
    node = dist.AllReduce("mean")(T.fvector("g")).owner
    # a job of one exchanges nothing: the host plan's copy, NCCL or not
    assert nccl.allreduce_entry(None, node, None) is HOST_PLAN
    assert nccl.DTYPES.keys() >= {"float32", "float64", "int32", "int64", "uint8"}


# -- two ranks under mpiexec -----------------------------------------------------------------
def _run(argv: list[str], timeout: float, threads: str | None = "1",
         **env_vars: str) -> subprocess.CompletedProcess:
    """Run argv with OMP_NUM_THREADS=threads (None: unset, and no BLAS thread variables)."""
    drop = ("PYTEST_", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(env_vars, **({} if threads is None else {"OMP_NUM_THREADS": threads}))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)


def _launch(scenario: str, backend: str, outdir: Path, *launcher_args: str,
            timeout: float = 120, worker_timeout: float = 60,
            threads: str | None = "1") -> subprocess.CompletedProcess:
    return _run([MPIEXEC, *launcher_args, "-n", "2", sys.executable, str(HERE / "worker.py"),
                 scenario, backend, str(outdir)], timeout, threads,
                WORKER_TIMEOUT=str(worker_timeout))


@needs_mpi
@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_data_parallel_sgd_equals_one_process_on_the_whole_batch(backend, tmp_path):
    run = _launch("sgd", backend, tmp_path)
    assert run.returncode == 0, run.stderr
    X, Y, start = mlp_data()
    params = sgd_params(start)
    step = sgd_step(params, backend, reduce=False)
    for k in range(STEPS):
        step(X[k], Y[k])
    want = [p.get_value() for p in params]
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npz")
        for j, w in enumerate(want):
            np.testing.assert_allclose(got[f"arr_{j}"], w, rtol=0, atol=1e-10)
    moved = max(np.abs(w - s).max() for w, s in zip(want, start))
    assert moved > 0.05  # the parameters trained


@needs_mpi
def test_helpers_across_two_ranks(tmp_path):
    run = _launch("helpers", "c", tmp_path)
    assert run.returncode == 0, run.stderr
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npz")
        np.testing.assert_array_equal(got["local"], [r, 2])
        np.testing.assert_array_equal(got["gathered"], [0, 1000])
        np.testing.assert_array_equal(got["a"], np.full(3, 3.0))
        np.testing.assert_array_equal(got["b"], np.arange(4) * 3)
        np.testing.assert_array_equal(got["ints"], [3, 6])
        np.testing.assert_array_equal(got["part"], np.arange(11)[[slice(0, 6), slice(6, 11)][r]])


@needs_mpi
def test_ranks_on_one_machine_share_its_cores(tmp_path):
    run = _launch("threads", "c", tmp_path, threads=None)
    assert run.returncode == 0, run.stderr
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    for r in range(2):
        got = np.load(tmp_path / f"rank{r}.npz")
        # OpenMP's setting for the compiled programs, and NumPy's OpenBLAS already loaded
        assert int(got["omp"]) == share
        assert list(got["blas"]) and set(got["blas"]) == {share}
    # a user's own setting stands
    run = _launch("threads", "c", tmp_path, threads="3")
    assert run.returncode == 0, run.stderr
    assert int(np.load(tmp_path / "rank0.npz")["omp"]) == 3


@needs_mpi
def test_ranks_that_disagree_get_a_clear_error_on_every_rank(tmp_path):
    run = _launch("mismatch", "c", tmp_path)
    assert run.returncode == 0, run.stderr
    for r in range(2):
        text = (tmp_path / f"rank{r}.txt").read_text()
        assert text.startswith(f"rank {r}: allreduce(op='mean') of (dcost/dW)"), text
        assert "rank 0 passes op='mean', (dcost/dW): float64 (3, 2)" in text
        assert "rank 1 passes op='mean', (dcost/dW): float64 (4, 2)" in text
        assert "worker.py" in text  # the user's line that built the allreduce
        np.testing.assert_array_equal(np.load(tmp_path / f"rank{r}.npz")["y"], np.full((2, 2),
                                                                                        3.5))


@needs_mpi
def test_a_rank_that_raises_stops_the_others_with_its_error(tmp_path):
    tic = time.monotonic()
    run = _launch("raise", "c", tmp_path, worker_timeout=60)
    took = time.monotonic() - tic
    assert run.returncode != 0
    assert "RuntimeError: rank 1 ran out of data" in run.stderr
    assert ("rank 0: allreduce(op='mean') of variable 0 (TensorType(float64, vector))"
            in run.stderr), run.stderr
    assert "stopped because rank 1 failed with RuntimeError: rank 1 ran out of data" in run.stderr
    assert "rank 0 finished" not in run.stdout
    assert took < 45, took  # the notice, not the 60 s timeout


@needs_mpi
def test_a_killed_rank_ends_the_job(tmp_path):
    run = _launch("kill", "numpy", tmp_path, timeout=60)
    assert run.returncode != 0
    assert "rank 0 finished" not in run.stdout
    assert "signal 9" in run.stdout + run.stderr


@needs_mpi
def test_a_silent_rank_times_out_with_a_clear_error(tmp_path):
    tic = time.monotonic()
    run = _launch("stuck", "numpy", tmp_path, worker_timeout=3, timeout=90)
    took = time.monotonic() - tic
    assert run.returncode != 0
    assert ("had no answer from every rank within 3 s (config.distributed.timeout): a rank "
            "died, is stuck") in run.stderr, run.stderr
    assert took < 60, took  # the silent rank sleeps 600 s: the failed rank aborts the job


@needs_mpi
def test_example_trains_the_same_on_one_and_two_ranks():
    example = [sys.executable, str(HERE.parents[1] / "examples" / "distributed_mlp.py"),
               "--epochs", "2", "--examples", "4096", "--device", "c"]
    alone, pair = _run(example, 120), _run([MPIEXEC, "-n", "2", *example], 120)
    assert alone.returncode == 0 and pair.returncode == 0, alone.stderr + pair.stderr

    def epochs(out: str) -> list[tuple[float, float]]:
        found = re.findall(r"epoch \d: loss ([\d.]+), held-out accuracy ([\d.]+)", out)
        assert len(found) == 2, out
        return [(float(a), float(b)) for a, b in found]

    assert "2 ranks on c" in pair.stdout and "1 rank on c" in alone.stdout
    assert epochs(pair.stdout) == epochs(alone.stdout)
    (loss1, _), (loss2, accuracy) = epochs(alone.stdout)
    assert loss2 < loss1 < np.log(10) and accuracy > 0.5  # it learns (chance is 0.1)


def _gpus() -> int:
    if backends()["cuda"].available()[0] is False:
        return 0
    found = shutil.which("nvidia-smi")
    if not found:
        return 1
    listed = subprocess.run([found, "-L"], capture_output=True, text=True).stdout
    return max(1, len(listed.splitlines()))


@needs_mpi
def test_nccl_allreduce_on_the_gpu(tmp_path):
    from theanine.backends.cuda import nccl

    if not backends()["cuda"].available()[0]:
        pytest.skip(f"no CUDA: {backends()['cuda'].available()[1]}")
    if nccl.find_library() is None:
        pytest.skip("no NCCL (pip install nvidia-nccl-cu12)")
    ranks = min(2, _gpus())  # one rank per GPU: NCCL refuses two ranks on one device
    run = _run([MPIEXEC, "-n", str(ranks), sys.executable, str(HERE / "worker.py"), "nccl",
                "cuda", str(tmp_path)], 180)
    assert run.returncode == 0, run.stderr
    xv = np.arange(1, 6, dtype=np.float32)
    factor = ranks * (ranks + 1) // 2
    for r in range(ranks):
        got = np.load(tmp_path / f"rank{r}.npz")
        assert int(got["communicators"]) == 1  # the NCCL plan ran, not MPI's host copies
        np.testing.assert_allclose(got["f_sum"], xv * factor, rtol=1e-6)
        np.testing.assert_array_equal(got["i_sum"], xv.astype(np.int32) * factor)
        np.testing.assert_allclose(got["mean"], xv.dot(xv) * xv * factor / ranks, rtol=1e-6)
