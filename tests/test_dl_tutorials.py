"""The classic DeepLearningTutorials' dA.py and SdA.py, run with only their imports changed.

The tutorials are not part of this repository: point THEANINE_DLT_DIR at a checkout of
lisa-lab/DeepLearningTutorials (the folder holding code/) to run these tests; without it they
are skipped. Each test copies code/{dA,SdA,logistic_sgd,mlp,utils}.py into a temporary folder,
rewrites their import lines only (IMPORTS) and runs the tutorial's own test function, shortened
through its arguments, in a new process per backend. MNIST cannot be downloaded here, so the
dataset is a synthetic `mnist.pkl.gz` of the same layout (784 pixels in [0, 1], labels 0-9,
train/valid/test splits of (x, y)), made of noisy copies of ten random prototypes.
"""

import gzip
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import theanine as theano

TUTORIALS = os.environ.get("THEANINE_DLT_DIR")
FILES = ("dA", "SdA", "logistic_sgd", "mlp", "utils")
IMPORTS = {
    "import theano": "import theanine as theano",
    "import theano.tensor as T": "import theanine.tensor as T",
    "from theano.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams":
        "from theanine.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams",
    # six is not a dependency; the tutorial takes pickle from it (and urllib to download
    # MNIST, which never runs here)
    "import six.moves.cPickle as pickle": "import pickle",
}

pytestmark = pytest.mark.skipif(
    not TUTORIALS, reason="THEANINE_DLT_DIR (a DeepLearningTutorials checkout) is not set")


def _shared_variables_have_truth() -> bool:
    try:
        return bool(theano.shared(np.zeros(1)))
    except TypeError:
        return False


def port(folder) -> None:
    """The tutorial files in `folder`, each import line of IMPORTS replaced and nothing else."""
    for name in FILES:
        with open(os.path.join(TUTORIALS, "code", f"{name}.py")) as f:
            lines = f.read().split("\n")
        ported = [IMPORTS.get(line, line) for line in lines]
        for old, new in zip(lines, ported):
            assert old == new or new.startswith(("import ", "from ")), (name, old)
            assert not re.match(r"\s*(import|from) theano\b", new), (name, new)
        (folder / f"{name}.py").write_text("\n".join(ported))


def synthetic_mnist(path, n_train=60, n_valid=20, n_test=20, seed=0) -> None:
    """A gzipped pickle laid out as the tutorials' mnist.pkl.gz: ((x, y),) * 3."""
    rng = np.random.RandomState(seed)
    protos = (rng.rand(10, 784) < 0.2).astype(np.float32)

    def split(n):
        y = rng.randint(0, 10, size=n)
        x = protos[y] * rng.uniform(0.6, 1.0, (n, 784)) + 0.1 * rng.rand(n, 784)
        return np.clip(x, 0, 1).astype(np.float32), y.astype(np.int64)

    with gzip.open(path, "wb") as f:
        pickle.dump((split(n_train), split(n_valid), split(n_test)), f)


def run_tutorial(tmp_path, call: str, flags: str) -> subprocess.CompletedProcess:
    """Run `call` (a tutorial's test function) in the ported folder."""
    port(tmp_path)
    synthetic_mnist(tmp_path / "mnist.pkl.gz")
    env = dict(os.environ, THEANINE_FLAGS=flags)
    return subprocess.run([sys.executable, "-c", call], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("flags", ["device=numpy", "device=c", "device=c,floatX=float32"])
def test_dA(tmp_path, flags):
    run = run_tutorial(tmp_path, "import dA; dA.test_dA(training_epochs=2, "
                                 "dataset='mnist.pkl.gz', batch_size=20, output_folder='plots')",
                       flags)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    costs = [float(c) for c in re.findall(r"^Training epoch \d, cost  (\S+)$", out, re.M)]
    assert len(costs) == 4, out  # two epochs without corruption, two with 30%
    assert costs[1] < 0.8 * costs[0] and costs[3] < 0.8 * costs[2], costs
    for name in ("filters_corruption_0.png", "filters_corruption_30.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 0


@pytest.mark.parametrize("flags", ["device=numpy", "device=c", "device=c,floatX=float32"])
def test_SdA(tmp_path, flags):
    run = run_tutorial(tmp_path, "import SdA; SdA.test_SdA(finetune_lr=0.1, "
                                 "pretraining_epochs=2, pretrain_lr=0.01, training_epochs=3, "
                                 "dataset='mnist.pkl.gz', batch_size=10)", flags)
    if not _shared_variables_have_truth():
        assert "if not W:" in run.stderr and "has no truth value" in run.stderr, run.stderr
        pytest.xfail("SdA says `if not W:` on a shared variable: Theano's truthiness")
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    pre = re.findall(r"^Pre-training layer (\d), epoch (\d), cost (\S+)$", out, re.M)
    assert [(int(i), int(e)) for i, e, _ in pre] == [(i, e) for i in range(3) for e in range(2)]
    costs = [float(c) for _, _, c in pre]
    assert all(costs[i + 1] < costs[i] for i in (0, 2, 4)), costs
    best = re.search(r"^Optimization complete with best validation score of (\S+) %", out, re.M)
    assert best is not None and float(best.group(1)) <= 20.0, out
