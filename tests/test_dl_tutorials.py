"""The classic DeepLearningTutorials (dA, SdA, the LeNet convolutional net and the six that loop:
rnnslu, lstm, rbm, DBN, hmc, rnnrbm), run with only their imports changed.

The tutorials are not part of this repository: point THEANINE_DLT_DIR at a checkout of
lisa-lab/DeepLearningTutorials (the folder holding code/) to run these tests; without it they
are skipped. Each test copies the tutorial's files from code/ into a temporary code/ folder,
rewrites their import lines only (IMPORTS) and runs the tutorial's own entry point, shortened
through its arguments, in a new process per backend. Nothing can be downloaded here, so each
dataset is a synthetic one of the same layout (tests/dlt_data.py). The tutorials save their
filters as images through Pillow (the test extra installs it); rnnrbm's MIDI reader
(`midi.utils`, shipped with the Nottingham data) is replaced by a stand-in reading the
synthetic piano-rolls.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from dlt_data import (
    MIDI_STUB,
    synthetic_atis,
    synthetic_digits,
    synthetic_imdb,
    synthetic_mnist,
    synthetic_nottingham,
)

import theanine as theano
from theanine.backend import backends

TUTORIALS = os.environ.get("THEANINE_DLT_DIR")
IMPORTS = {
    "import theano": "import theanine as theano",
    "import theano.tensor as T": "import theanine.tensor as T",
    "import theano.tensor as tensor": "import theanine.tensor as tensor",
    "from theano import tensor as T": "from theanine import tensor as T",
    "from theano import tensor as TT": "from theanine import tensor as TT",
    "from theano import config": "from theanine import config",
    "from theano.tensor.signal import pool": "from theanine.tensor.signal import pool",
    "from theano.tensor.nnet import conv2d": "from theanine.tensor.nnet import conv2d",
    "from theano import function, shared": "from theanine import function, shared",
    "import theano.sandbox.rng_mrg": "import theanine.sandbox.rng_mrg",
    "from theano.sandbox.rng_mrg import MRG_RandomStreams":
        "from theanine.sandbox.rng_mrg import MRG_RandomStreams",
    "from theano.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams":
        "from theanine.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams",
    # six is not a dependency; the tutorials take pickle and xrange from it (and urllib to
    # download their data, which never runs here)
    "import six.moves.cPickle as pickle": "import pickle",
    "from six.moves import xrange": "from builtins import range as xrange",
    "from six.moves import urllib": "import urllib.request",
}
FLAGS = ["device=numpy", "device=c", pytest.param("device=opencl", marks=pytest.mark.skipif(
    not backends()["opencl"].available()[0], reason="no OpenCL device"))]

pytestmark = pytest.mark.skipif(
    not TUTORIALS, reason="THEANINE_DLT_DIR (a DeepLearningTutorials checkout) is not set")


def _shared_variables_have_truth() -> bool:
    try:
        return bool(theano.shared(np.zeros(1)))
    except TypeError:
        return False


def port(code, files) -> None:
    """The tutorial `files` (paths under code/) in the folder `code`, each import line of
    IMPORTS replaced and nothing else."""
    for name in files:
        with open(os.path.join(TUTORIALS, "code", name)) as f:
            lines = f.read().split("\n")
        ported = [line[:len(line) - len(line.lstrip())] + IMPORTS[line.strip()]
                  if line.strip() in IMPORTS else line for line in lines]
        for old, new in zip(lines, ported):
            assert old == new or new.strip().startswith(("import ", "from ")), (name, old)
            assert not re.match(r"\s*(import|from) (theano|six)\b", new), (name, new)
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text("\n".join(ported))


def run_tutorial(tmp_path, files, call: str, flags: str, **env) -> subprocess.CompletedProcess:
    """Run `call` in tmp_path/code, holding the ported `files` and a synthetic MNIST."""
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    port(code, files)
    synthetic_mnist(code / "mnist.pkl.gz")
    env = dict(os.environ, THEANINE_FLAGS=flags, **env)
    return subprocess.run([sys.executable, "-c", call], cwd=code, env=env,
                          capture_output=True, text=True, timeout=900)


def numbers(pattern: str, out: str) -> list[float]:
    """The numbers the tutorial printed on lines matching `pattern` (one group)."""
    return [float(v) for v in re.findall(pattern, out, re.M)]


DA_FILES = ("dA.py", "SdA.py", "logistic_sgd.py", "mlp.py", "utils.py")


@pytest.mark.parametrize("flags", ["device=numpy", "device=c", "device=c,floatX=float32"])
def test_dA(tmp_path, flags):
    run = run_tutorial(tmp_path, DA_FILES, "import dA; dA.test_dA(training_epochs=2, "
                                 "dataset='mnist.pkl.gz', batch_size=20, output_folder='plots')",
                       flags)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    costs = [float(c) for c in re.findall(r"^Training epoch \d, cost  (\S+)$", out, re.M)]
    assert len(costs) == 4, out  # two epochs without corruption, two with 30%
    assert costs[1] < 0.8 * costs[0] and costs[3] < 0.8 * costs[2], costs
    for name in ("filters_corruption_0.png", "filters_corruption_30.png"):
        assert (tmp_path / "code" / "plots" / name).stat().st_size > 0


@pytest.mark.parametrize("flags", ["device=numpy", "device=c", "device=c,floatX=float32"])
def test_SdA(tmp_path, flags):
    run = run_tutorial(tmp_path, DA_FILES, "import SdA; SdA.test_SdA(finetune_lr=0.1, "
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


@pytest.mark.parametrize("flags", ["device=numpy", "device=c", "device=c,floatX=float32"])
def test_lenet5(tmp_path, flags):
    """convolutional_mlp.py's LeNet (conv2d, max pool_2d, conv2d, max pool_2d, tanh hidden
    layer, softmax; SGD on all eight parameters) with the tutorial's 20 and 50 kernels but
    minibatches of 20, five epochs on 400 synthetic stroke images (dlt_data.synthetic_digits):
    the validation error it prints after each epoch starts near chance (90%) and falls."""
    code = tmp_path / "code"
    code.mkdir()
    synthetic_digits(code / "digits.pkl.gz")
    call = ("import convolutional_mlp as c; c.evaluate_lenet5(learning_rate=0.1, n_epochs=5, "
            "dataset='digits.pkl.gz', nkerns=[20, 50], batch_size=20)")
    run = run_tutorial(tmp_path, ("convolutional_mlp.py", "logistic_sgd.py", "mlp.py"), call,
                       flags)
    assert run.returncode == 0, run.stderr[-3000:]
    errors = numbers(r"^epoch \d+, minibatch 20/20, validation error (\S+) %$", run.stdout)
    assert len(errors) == 5, run.stdout[-2000:]
    assert errors[0] > 60 and errors[-1] < 0.6 * errors[0] and errors[-1] < 50, errors
    test = numbers(r"^Best validation score of \S+ % obtained at iteration \d+, with test "
                   r"performance (\S+) %$", run.stdout)
    assert len(test) == 1 and test[0] < 50, run.stdout[-2000:]


@pytest.mark.parametrize("flags", FLAGS)
def test_rnnslu(tmp_path, flags):
    """The Elman RNN tagger (scan over a sentence, softmax per word, BPTT), two epochs on a
    synthetic ATIS fold; conlleval.pl scores it."""
    shutil.copy(os.path.join(TUTORIALS, "code", "conlleval.pl"), tmp_path)
    synthetic_atis(tmp_path / "atis.fold3.pkl.gz")
    param = dict(fold=3, data="atis", lr=0.0970806646812754, verbose=1, decay=True, win=3,
                 nhidden=16, seed=345, emb_dimension=8, nepochs=1, savemodel=False)
    call = (f"import shutil, rnnslu; shutil.copy('../conlleval.pl', '.'); "
            f"rnnslu.main({param!r})")
    run = run_tutorial(tmp_path, ("rnnslu.py",), call, flags, ATISDATA=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    f1 = numbers(r"^.*NEW BEST: epoch 0 valid F1 (\S+) best test F1", run.stdout)
    assert len(f1) == 1 and f1[0] > 50.0, run.stdout[-2000:]
    assert re.search(r"^BEST RESULT: epoch 0 valid F1", run.stdout, re.M), run.stdout[-2000:]


@pytest.mark.parametrize("flags", FLAGS)
def test_lstm(tmp_path, flags):
    """The LSTM sentiment classifier (scan over a masked minibatch, adadelta, dropout from
    MRG_RandomStreams) on a synthetic IMDB; the printed cost falls and the errors are low.
    No validation runs during training: under Python 3 the tutorial's minibatch iterators are
    `zip` objects, used up by the first validation, which then reports an error of 1.0."""
    call = ("import lstm; lstm.train_lstm(dim_proj=16, max_epochs=30, dispFreq=10, n_words=60, "
            "validFreq=10**9, saveFreq=10**9, maxlen=100, batch_size=8, valid_batch_size=16, "
            "dataset='imdb', saveto='lstm_model.npz')")
    code = tmp_path / "code"
    code.mkdir()
    synthetic_imdb(code / "imdb.pkl")
    run = run_tutorial(tmp_path, ("lstm.py", "imdb.py"), call, flags)
    assert run.returncode == 0, run.stderr[-3000:]
    costs = numbers(r"^Epoch  \d+ Update  \d+ Cost  (\S+)$", run.stdout)
    assert len(costs) >= 10, run.stdout[-2000:]
    assert np.mean(costs[-3:]) < 0.7 * np.mean(costs[:3]), costs
    final = re.search(r"^Train  (\S+) Valid  (\S+) Test  (\S+)$", run.stdout, re.M)
    assert final is not None and float(final.group(1)) < 0.25, run.stdout[-2000:]
    assert float(final.group(3)) < 0.35, run.stdout[-2000:]
    assert (code / "lstm_model.npz").stat().st_size > 0


@pytest.mark.parametrize("flags", FLAGS)
def test_rbm(tmp_path, flags):
    """The RBM trained by persistent CD-15 (a scan of Gibbs steps, its updates carrying the
    random streams and the chain), then sampled by a 1000-step Gibbs scan."""
    call = ("import rbm; rbm.test_rbm(learning_rate=0.1, training_epochs=3, "
            "dataset='mnist.pkl.gz', batch_size=20, n_chains=4, n_samples=2, "
            "output_folder='rbm_plots', n_hidden=20)")
    run = run_tutorial(tmp_path, ("rbm.py", "utils.py", "logistic_sgd.py"), call, flags)
    assert run.returncode == 0, run.stderr[-3000:]
    costs = numbers(r"^Training epoch \d, cost is  (\S+)$", run.stdout)
    assert len(costs) == 3, run.stdout[-2000:]
    # the printed "cost" is the log pseudo-likelihood (negative): it rises as the RBM learns
    assert all(c < 0 for c in costs) and costs[2] > costs[0], costs
    assert re.findall(r"^ \.\.\. plotting sample (\d)$", run.stdout, re.M) == ["0", "1"]
    plots = tmp_path / "code" / "rbm_plots"
    for name in ("filters_at_epoch_0.png", "filters_at_epoch_2.png", "samples.png"):
        assert (plots / name).stat().st_size > 0


@pytest.mark.parametrize("flags", FLAGS)
def test_DBN(tmp_path, flags):
    """The deep belief net: three RBMs pretrained by CD-1 (each a Gibbs scan), then finetuned
    as an MLP."""
    call = ("import DBN; DBN.test_DBN(finetune_lr=0.1, pretraining_epochs=2, pretrain_lr=0.01, "
            "k=1, training_epochs=3, dataset='mnist.pkl.gz', batch_size=10)")
    run = run_tutorial(tmp_path, ("DBN.py", "rbm.py", "utils.py", "logistic_sgd.py", "mlp.py"),
                       call, flags)
    assert run.returncode == 0, run.stderr[-3000:]
    pre = re.findall(r"^Pre-training layer (\d), epoch (\d), cost  (\S+)$", run.stdout, re.M)
    assert [(int(i), int(e)) for i, e, _ in pre] == [(i, e) for i in range(3) for e in range(2)]
    costs = [float(c) for _, _, c in pre]
    # the printed cost is rbm.py's reconstruction cost, the mean log-likelihood of the input
    # under its reconstruction (negative): it rises within each layer
    assert all(costs[i] < 0 and costs[i + 1] > costs[i] for i in (0, 2, 4)), costs
    best = re.search(r"^Optimization complete with best validation score of (\S+) %",
                     run.stdout, re.M)
    assert best is not None and float(best.group(1)) <= 20.0, run.stdout[-2000:]


@pytest.mark.parametrize("flags", FLAGS)
def test_hmc(tmp_path, flags):
    """Hybrid Monte Carlo (a leapfrog scan, the gradient of the energy inside it, a
    Metropolis accept step and adaptive step size) sampling a 5-d Gaussian: the tutorial's own
    test_hmc (1000 burn-in and 1000 kept draws; it asserts the acceptance rate and step size),
    and the empirical mean it prints against the target's."""
    files = ("hmc/__init__.py", "hmc/hmc.py", "hmc/test_hmc.py")
    run = run_tutorial(tmp_path, files, "from hmc import test_hmc; test_hmc.test_hmc()", flags)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    rate = numbers(r"^final acceptance_rate (\S+)$", out)
    assert len(rate) == 1 and abs(rate[0] - 0.9) < 0.1, out[-2000:]
    mu = np.array([float(v) for v in re.search(r"target mean: \[([^\]]*)\]", out).group(1)
                   .split()])
    mean = np.array([float(v) for v in re.search(r"empirical mean:  \[([^\]]*)\]", out)
                     .group(1).split()])
    assert mu.shape == mean.shape == (5,) and np.all(np.abs(mean - mu) < 1.0), (mu, mean)


@pytest.mark.parametrize("flags", FLAGS)
def test_rnnrbm(tmp_path, flags):
    """The RNN-RBM (an outer scan of the RNN whose step holds an RBM's Gibbs chain, itself a
    scan; CD-15 gradients through both), trained on synthetic piano-rolls, then generating a
    sequence (generate() with show=False: pylab is not installed)."""
    data = tmp_path / "data" / "Nottingham" / "train"
    data.mkdir(parents=True)
    synthetic_nottingham(data)
    (tmp_path / "code" / "midi").mkdir(parents=True)
    (tmp_path / "code" / "midi" / "__init__.py").write_text("")
    (tmp_path / "code" / "midi" / "utils.py").write_text(MIDI_STUB)
    call = ("import rnnrbm; model = rnnrbm.test_rnnrbm(batch_size=100, num_epochs=6); "
            "model.generate('sample1.mid', show=False)")
    run = run_tutorial(tmp_path, ("rnnrbm.py",), call, flags)
    assert run.returncode == 0, run.stderr[-3000:]
    epochs = re.findall(r"^Epoch (\d+)/6\n(\S+)$", run.stdout, re.M)
    assert [int(e) for e, _ in epochs] == list(range(1, 7)), run.stdout[-2000:]
    # the printed monitor is the pseudo-log-likelihood (negative): it rises with training
    monitor = [float(m) for _, m in epochs]
    assert all(m < 0 for m in monitor) and monitor[-1] > monitor[0], monitor
    with open(tmp_path / "code" / "sample1.mid", "rb") as f:
        sample = np.load(f)
    assert sample.ndim == 2 and sample.shape[1] == 88 and set(np.unique(sample)) <= {0, 1}
