"""Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) in
NumPy: the reference every backend's random kernels are held to.

A draw is a pure function of a 64-bit key, a 64-bit stream counter and the element's index,
so every backend, thread count and work split gives the same bits. The words of one draw form
a stream: word j is word j % 4 of the Philox block whose counter is (j // 4 as two 32-bit
words, the stream counter as two 32-bit words), under the key. An element that needs W words
(W = 1, 2 or 4) takes words W*i .. W*i + W - 1, so all of an element's words lie in one block.

How words become values (kept exact where it can be, so backends agree to the bit):
- uniform float32: (w >> 8) * 2**-24, in [0, 1);
- uniform float64: ((w0 >> 5) * 2**26 + (w1 >> 6)) * 2**-53, in [0, 1) (NumPy's method);
- normal: Box-Muller on two uniforms u1 (taken as 1 - u, in (0, 1]) and u2:
  sqrt(-2 log u1) * cos(2 pi u2), computed in the output dtype.
"""

from __future__ import annotations

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57  # the round multipliers
W0, W1 = 0x9E3779B9, 0xBB67AE85  # the key schedule's Weyl increments
ROUNDS = 10
_LOW = np.uint64(0xFFFFFFFF)

# words per element of each draw kind and dtype
WORDS = {("uniform", "float32"): 1, ("uniform", "float64"): 2,
         ("normal", "float32"): 2, ("normal", "float64"): 4}


def philox4x32(counter: tuple, key: tuple) -> tuple:
    """Philox4x32-10 of four 32-bit counter words and two key words (uint64 arrays holding
    32-bit values, broadcast together); the four output words, as uint64 arrays."""
    x0, x1, x2, x3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = (np.asarray(k, dtype=np.uint64) for k in key)
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + np.uint64(W0)) & _LOW
            k1 = (k1 + np.uint64(W1)) & _LOW
        p0 = x0 * np.uint64(M0)
        p1 = x2 * np.uint64(M1)
        x0, x1, x2, x3 = ((p1 >> np.uint64(32)) ^ x1 ^ k0, p1 & _LOW,
                          (p0 >> np.uint64(32)) ^ x3 ^ k1, p0 & _LOW)
    return x0, x1, x2, x3


def words(key, ctr, first_word, n_words: int) -> np.ndarray:
    """Words `first_word(s)` .. + n_words - 1 of stream (key, ctr) for each element of the
    broadcast uint64 arrays `key`, `ctr` and `first_word` (which must be a multiple of
    n_words, itself 1, 2 or 4): an array of shape (..., n_words) of uint32."""
    key = np.asarray(key, dtype=np.uint64)
    ctr = np.asarray(ctr, dtype=np.uint64)
    first = np.asarray(first_word, dtype=np.uint64)
    block = first >> np.uint64(2)
    out = philox4x32((block & _LOW, block >> np.uint64(32), ctr & _LOW, ctr >> np.uint64(32)),
                     (key & _LOW, key >> np.uint64(32)))
    stacked = np.stack(np.broadcast_arrays(*out), axis=-1)
    lane = (first & np.uint64(3)).astype(np.intp)
    picks = [np.take_along_axis(stacked, (lane + w)[..., None], axis=-1)[..., 0]
             for w in range(n_words)]
    return np.stack(picks, axis=-1).astype(np.uint32)


def uniform_from_words(w: np.ndarray, dtype: str) -> np.ndarray:
    """Uniform [0, 1) values of `dtype` from the (..., W) words of each element."""
    if dtype == "float32":
        return ((w[..., 0] >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24))
    hi = (w[..., 0] >> np.uint32(5)).astype(np.float64)
    lo = (w[..., 1] >> np.uint32(6)).astype(np.float64)
    return (hi * 67108864.0 + lo) * 2.0 ** -53


def normal_from_words(w: np.ndarray, dtype: str) -> np.ndarray:
    """Standard normal values of `dtype` (Box-Muller's cosine branch) from each element's
    (..., W) words: the first half gives u1, the second u2."""
    half = w.shape[-1] // 2
    t = np.dtype(dtype).type
    u1 = t(1) - uniform_from_words(w[..., :half], dtype)
    u2 = uniform_from_words(w[..., half:], dtype)
    return np.sqrt(t(-2) * np.log(u1)) * np.cos(t(2 * np.pi) * u2)


def draw(kind: str, dtype: str, key, ctr, index) -> np.ndarray:
    """The `kind` ("uniform" or "normal") value of `dtype` at element `index` of stream
    (key, ctr): the reference of the random scalar kernels."""
    n = WORDS[(kind, dtype)]
    w = words(key, ctr, np.asarray(index, dtype=np.uint64) * np.uint64(n), n)
    values = uniform_from_words(w, dtype) if kind == "uniform" else normal_from_words(w, dtype)
    return np.asarray(values, dtype=dtype)


def seed_key(seed: int, stream: int) -> int:
    """The 64-bit Philox key of draw number `stream` of a generator seeded with `seed`: one
    Philox block of (stream, 0, 0, 0) under the seed as key, so keys of nearby seeds and
    streams share no structure."""
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    out = philox4x32((stream & 0xFFFFFFFF, stream >> 32, 0, 0),
                     (seed & 0xFFFFFFFF, seed >> 32))
    return int(out[0]) | (int(out[1]) << 32)
