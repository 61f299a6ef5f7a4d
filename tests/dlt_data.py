"""Synthetic stand-ins for the DeepLearningTutorials' datasets (nothing can be downloaded here),
each laid out exactly as the tutorial's own loader reads it, and learnable, so that training
visibly lowers the cost: MNIST (`mnist.pkl.gz`; shifted strokes for the convolutional net),
ATIS (`atis.foldN.pkl.gz`), IMDB (`imdb.pkl`) and Nottingham piano-rolls (read through
MIDI_STUB, see there)."""

import gzip
import pickle

import numpy as np


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


def synthetic_digits(path, n_train=400, n_valid=200, n_test=200, seed=0) -> None:
    """A gzipped pickle laid out as mnist.pkl.gz, for the convolutional tutorial: ten classes
    of 28x28 images, each class a fixed set of three thick strokes drawn anywhere within 3
    pixels of its place, with random contrast, speckle and background noise. A pixel-mask
    prototype (synthetic_mnist) is matched by a linear model at once; strokes that move from
    image to image are what convolution and pooling are for, and are learnt over epochs."""
    rng = np.random.RandomState(seed)
    templates = np.zeros((10, 28, 28), np.float32)
    for digit in range(10):
        for _ in range(3):
            (r0, c0), (r1, c1) = rng.randint(7, 21, size=(2, 2))
            for t in np.linspace(0, 1, 40):
                r, c = int(round(r0 + t * (r1 - r0))), int(round(c0 + t * (c1 - c0)))
                templates[digit, r - 1:r + 1, c - 1:c + 1] = 1

    def split(n):
        y = rng.randint(0, 10, size=n)
        x = np.empty((n, 28, 28), np.float32)
        for i, digit in enumerate(y):
            shift = rng.randint(-3, 4, size=2)
            moved = np.roll(templates[digit], tuple(shift), axis=(0, 1))
            speckle = rng.rand(28, 28) < 0.85
            x[i] = moved * speckle * rng.uniform(0.5, 1.0) + 0.3 * rng.rand(28, 28)
        return np.clip(x, 0, 1).reshape(n, 784), y.astype(np.int64)

    with gzip.open(path, "wb") as f:
        pickle.dump((split(n_train), split(n_valid), split(n_test)), f)


ATIS_LABELS = ["O", "B-fromloc", "I-fromloc", "B-toloc", "B-date"]


def synthetic_atis(path, n_train=2000, n_valid=40, n_test=40, n_words=40, seed=0) -> None:
    """A gzipped pickle laid out as rnnslu's atis.foldN.pkl.gz: (train, valid, test, dicts),
    each split (words, named entities, labels) of int32 arrays, one per sentence, and dicts
    with 'words2idx', 'labels2idx' and 'tables2idx'. A word's label is fixed by the word, so
    the tagging is learnable."""
    rng = np.random.RandomState(seed)
    label_of_word = np.where(np.arange(n_words) < n_words // 2, 0,
                             1 + np.arange(n_words) % (len(ATIS_LABELS) - 1))

    def split(n):
        lex = [rng.randint(0, n_words, size=rng.randint(4, 10)).astype(np.int32)
               for _ in range(n)]
        return lex, [np.zeros_like(s) for s in lex], [label_of_word[s].astype(np.int32)
                                                       for s in lex]

    dicts = {"words2idx": {f"w{i}": i for i in range(n_words)},
             "labels2idx": {label: i for i, label in enumerate(ATIS_LABELS)},
             "tables2idx": {"O": 0}}
    with gzip.open(path, "wb") as f:
        pickle.dump((split(n_train), split(n_valid), split(n_test), dicts), f)


def synthetic_imdb(path, n_train=120, n_test=40, n_words=60, seed=0) -> None:
    """A pickle laid out as lstm's imdb.pkl: two pickles in a row, train then test, each
    (list of word-id lists, list of 0/1 labels); positive reviews draw their words mostly
    from the upper half of the vocabulary."""
    rng = np.random.RandomState(seed)

    def split(n):
        ys = rng.randint(0, 2, size=n)
        xs = []
        for y in ys:
            low, high = (n_words // 2, n_words) if y else (2, n_words // 2)
            words = rng.randint(low, high, size=rng.randint(5, 15))
            noise = rng.rand(len(words)) < 0.2
            words[noise] = rng.randint(2, n_words, size=noise.sum())
            xs.append([int(w) for w in words])
        return xs, [int(y) for y in ys]

    with open(path, "wb") as f:
        pickle.dump(split(n_train), f)
        pickle.dump(split(n_test), f)


def synthetic_nottingham(folder, n_files=4, n_notes=88, seed=0) -> None:
    """Piano-rolls (time x 88 notes, 0/1) saved as NumPy arrays under the `*.mid` names
    rnnrbm globs for; MIDI_STUB's midiread loads them. Each tune repeats a short chord
    pattern, so the RNN-RBM can learn it."""
    rng = np.random.RandomState(seed)
    for i in range(n_files):
        chords = (rng.rand(3, n_notes) < 0.05).astype(np.float64)
        roll = np.tile(chords, (rng.randint(8, 14), 1))
        with open(folder / f"tune{i}.mid", "wb") as f:
            np.save(f, roll)


# The tutorial reads Nottingham's MIDI files through `midi.utils` (a MIDI parser shipped with
# the dataset, not a tutorial file and not installable here); this stand-in reads the
# piano-rolls synthetic_nottingham wrote, and writes them back for generate().
MIDI_STUB = '''"""Stand-in for the Nottingham data's midi.utils: piano-rolls as NumPy arrays."""
import numpy


class midiread:
    def __init__(self, filename, r=(21, 109), dt=0.2):
        with open(filename, "rb") as f:
            self.piano_roll = numpy.load(f)[:, : r[1] - r[0]]


def midiwrite(filename, piano_roll, r=(21, 109), dt=0.2):
    with open(filename, "wb") as f:
        numpy.save(f, numpy.asarray(piano_roll))
'''
