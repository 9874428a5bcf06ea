"""The resampling engine behind the intervals: a hierarchical bootstrap over seeds and test images, exact and fast in
pure Python (no numpy), with a seeded RNG so every number is reproducible.

One bootstrap draw resamples the seeds with replacement (counts ``w_s``, a multinomial of S trials over the S seeds)
and, independently, the N test images with replacement (counts ``v_i``). The test set is fixed, so every seed of a
cell, and every method evaluated on the same images, uses the *same* image draw. A cell's replicate accuracy is::

    100 * sum_s sum_i w_s v_i x[s][i] / (S * N)           x[s][i] = 1 when seed s got image i right

Drawing the N image counts one by one would cost N random numbers per draw. It is not needed: given the seed draw
``w``, image i contributes only through its value ``c_i = sum_s w_s x[s][i]`` (for a group of cells on the same
images, the tuple of those values, one per cell). Images with equal values are interchangeable, so the image draw
reduces to a multinomial of N trials over the few distinct values, with probabilities (images with that value) / N.
That multinomial is drawn exactly as a chain of binomials (each category given the trials the previous ones left).
With 3 seeds a cell has at most 4 values (0..3) and a pair of cells at most 16: a handful of binomial draws per
bootstrap draw instead of 2,400 random numbers, with the same distribution.

Images are grouped by their correctness pattern across all (cell, seed) vectors once (bit operations on Python
integers); the values per pattern are recomputed only for each distinct seed draw (10 with 3 seeds).

Seeds are resampled by seed *number*: every cell with the same seed numbers uses the same seed draw (one stream per
set of seed numbers), which pairs methods seed by seed and treats each seed number as one unit across datasets (valid
whether the datasets' runs are independent, as in base2new, or share one source model per seed, as in xd and dg).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from typing import Dict, List, Sequence, Tuple

SeedDraw = Tuple[int, ...]  # how many times each seed (in the order of its tuple) was drawn


def binomial(rng: random.Random, n: int, p: float) -> int:
    """An exact Binomial(n, p) draw: inversion for a small mean, Hörmann's BTRS rejection sampler otherwise."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    if n * p < 10.0:
        return _inversion(rng, n, p)
    return _btrs(rng, n, p)


def _inversion(rng: random.Random, n: int, p: float) -> int:
    """Walk the CDF from 0 with the recurrence P(x)/P(x-1) = ((n+1)/x - 1) * p/q (expected n*p + 1 steps)."""
    q = 1.0 - p
    s = p / q
    a = (n + 1) * s
    while True:
        r = q**n
        u = rng.random()
        x = 0
        while u > r and x < n:
            u -= r
            x += 1
            r *= a / x - s
        if u <= r:
            return x
        # u fell into the rounding gap past x = n: draw again


def _btrs(rng: random.Random, n: int, p: float, _log=math.log, _lgamma=math.lgamma, _sqrt=math.sqrt) -> int:
    """Transformed rejection with squeeze (W. Hörmann, 1993), for n*p >= 10 and p <= 1/2. The constants of the
    final acceptance test are computed only when the squeeze fails (about one draw in seven)."""
    q = 1.0 - p
    spq = _sqrt(n * p * q)
    b = 1.15 + 2.53 * spq
    a2 = 2.0 * (-0.0873 + 0.0248 * b + 0.01 * p)
    c = n * p + 0.5
    v_r = 0.92 - 4.2 / b
    rand = rng.random
    h = None
    while True:
        u = rand() - 0.5
        v = rand()
        us = 0.5 - (u if u >= 0.0 else -u)
        if us <= 0.0:
            continue
        t = (a2 / us + b) * u + c
        if t < 0.0 or t >= n + 1:
            continue
        k = int(t)  # floor, t >= 0
        if us >= 0.07 and v <= v_r:
            return k
        if h is None:
            alpha = (2.83 + 5.1 / b) * spq
            lpq = _log(p / q)
            m = int((n + 1) * p)
            h = _lgamma(m + 1) + _lgamma(n - m + 1)
        if _log(v * alpha / (a2 / 2.0 / (us * us) + b)) <= h - _lgamma(k + 1) - _lgamma(n - k + 1) + (k - m) * lpq:
            return k


class BinomialTable:
    """Inverse-CDF sampling of one Binomial(n, p) reused for many draws: the CDF over the mode +- the range where
    the probability is above 1e-17 of the mode's (the rest, < 1e-13 in all, is never drawn)."""

    __slots__ = ("low", "cdf")

    def __init__(self, n: int, p: float) -> None:
        if p <= 0.0 or p >= 1.0:
            self.low, self.cdf = (0 if p <= 0.0 else n), [1.0]
            return
        m = min(n, math.floor((n + 1) * p))
        ratio = p / (1.0 - p)
        up, x, w = [], m, 1.0
        while x < n and w > 1e-17:
            w *= (n - x) / (x + 1) * ratio
            x += 1
            up.append(w)
        down, x, w = [], m, 1.0
        while x > 0 and w > 1e-17:
            w *= x / (n - x + 1) / ratio
            x -= 1
            down.append(w)
        weights = down[::-1] + [1.0] + up
        total = math.fsum(weights)
        self.low = m - len(down)
        cdf, acc = [], 0.0
        for w in weights:
            acc += w
            cdf.append(acc / total)
        cdf[-1] = 1.0
        self.cdf = cdf

    def sample(self, u: float) -> int:
        return self.low + bisect.bisect_left(self.cdf, u)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics at position q*(B-1) (numpy's default)."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


class Leaf:
    """One cell's per-image data: a method on one test set, one bit vector per seed (bit i = image i correct)."""

    __slots__ = ("seeds", "bits", "items", "n", "key")

    def __init__(self, seeds: Sequence[int], bits: Sequence[int], items: str, n: int) -> None:
        self.seeds, self.bits, self.items, self.n = tuple(seeds), tuple(bits), items, n
        h = hashlib.sha256(f"{items}|{n}|{self.seeds}".encode())
        for b in self.bits:
            h.update(b.to_bytes((n + 7) // 8, "little"))
        self.key = h.hexdigest()[:24]


def _patterns(vectors: Sequence[int], n: int) -> Dict[int, int]:
    """{pattern: number of images}, bit k of a pattern = vector k has the image (refining masks, empty ones dropped)."""
    parts: List[Tuple[int, int]] = [(0, (1 << n) - 1)]
    for k, bits in enumerate(vectors):
        refined = []
        for pattern, mask in parts:
            inside = mask & bits
            if inside:
                refined.append((pattern | 1 << k, inside))
            if inside != mask:
                refined.append((pattern, mask ^ inside))
        parts = refined
    return {pattern: mask.bit_count() for pattern, mask in parts}


class Simulator:
    """Bootstrap draws shared by every interval of one table: each (set of cells on the same images) is simulated
    once and reused by every statistic that needs it, and every cell with the same seed numbers gets the same seed
    draws. Results depend only on ``draws``, ``seed`` and the data, never on the order of the requests."""

    def __init__(self, draws: int = 2000, seed: int = 0) -> None:
        if draws < 1:
            raise ValueError("the number of bootstrap draws must be at least 1")
        self.draws, self.seed = int(draws), int(seed)
        self._seed_draws: Dict[Tuple[int, ...], List[SeedDraw]] = {}
        self._groups: Dict[Tuple[str, ...], Dict[str, List[float]]] = {}

    def seed_draws(self, seeds: Tuple[int, ...]) -> List[SeedDraw]:
        """Per bootstrap draw, how often each of ``seeds`` was drawn (S draws with replacement)."""
        if seeds not in self._seed_draws:
            rng = random.Random(f"{self.seed}|seeds|{','.join(map(str, seeds))}")
            size = len(seeds)
            out = []
            for _ in range(self.draws):
                counts = [0] * size
                for _ in range(size):
                    counts[rng.randrange(size)] += 1
                out.append(tuple(counts))
            self._seed_draws[seeds] = out
        return self._seed_draws[seeds]

    def replicates(self, leaves: Sequence[Leaf]) -> Dict[str, List[float]]:
        """Replicate accuracies (percent) of cells evaluated on the same images, under one shared image draw per
        bootstrap draw: {leaf key: [accuracy per draw]}."""
        unique = sorted({leaf.key: leaf for leaf in leaves}.values(), key=lambda leaf: leaf.key)
        key = tuple(leaf.key for leaf in unique)
        if key not in self._groups:
            self._groups[key] = self._simulate(unique)
        return self._groups[key]

    def _simulate(self, leaves: Sequence[Leaf]) -> Dict[str, List[float]]:
        n = leaves[0].n
        if any(leaf.n != n or leaf.items != leaves[0].items for leaf in leaves):
            raise ValueError("cells simulated together must be evaluated on the same test items")
        vectors = [bits for leaf in leaves for bits in leaf.bits]
        patterns = _patterns(vectors, n)
        seed_sets = sorted({leaf.seeds for leaf in leaves})
        streams = [self.seed_draws(s) for s in seed_sets]
        which = [seed_sets.index(leaf.seeds) for leaf in leaves]
        offsets, start = [], 0
        for leaf in leaves:
            offsets.append(start)
            start += len(leaf.seeds)
        rng = random.Random(f"{self.seed}|images|{'|'.join(leaf.key for leaf in leaves)}")
        rand = rng.random
        plans: Dict[Tuple[SeedDraw, ...], tuple] = {}
        width = len(leaves)
        totals_per_draw: List[List[int]] = []
        for r in range(self.draws):
            wkey = tuple(stream[r] for stream in streams)
            plan = plans.get(wkey)
            if plan is None:
                plan = plans[wkey] = _plan(patterns, n, [wkey[i] for i in which], offsets)
            table, first, links, last = plan
            totals = [0] * width
            x = table.sample(rand()) if table is not None else 0
            remaining = n - x
            if x:
                for i, value in first:
                    totals[i] += x * value
            for cond_p, values in links:
                if not remaining:
                    break
                x = binomial(rng, remaining, cond_p)
                if x:
                    remaining -= x
                    for i, value in values:
                        totals[i] += x * value
            if remaining:
                for i, value in last:
                    totals[i] += remaining * value
            totals_per_draw.append(totals)
        out = {}
        for i, leaf in enumerate(leaves):
            scale = 100.0 / (len(leaf.seeds) * n)
            out[leaf.key] = [t[i] * scale for t in totals_per_draw]
        return out


def _plan(patterns: Dict[int, int], n: int, weights: Sequence[SeedDraw], offsets: Sequence[int]) -> tuple:
    """For one seed draw, how to draw the image resample: the distinct value tuples (one value per cell, stored
    sparsely) with their image counts, as a chain of binomials. The most frequent tuple comes last (it takes the
    trials left, no draw); the second most frequent first, with n = N fixed, from a table; the others in between,
    each given the trials the previous ones left."""
    counts: Dict[Tuple[int, ...], int] = {}
    for pattern, count in patterns.items():
        values = tuple(sum(w for j, w in enumerate(ws) if pattern >> (off + j) & 1) for ws, off in zip(weights, offsets))
        counts[values] = counts.get(values, 0) + count
    ordered = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))

    def sparse(values: Tuple[int, ...]) -> Tuple[Tuple[int, int], ...]:
        return tuple((i, v) for i, v in enumerate(values) if v)

    last = sparse(ordered[-1][0])
    if len(ordered) == 1:
        return None, (), (), last
    first_values, first_count = ordered[-2]
    table = BinomialTable(n, first_count / n)
    links, left = [], n - first_count
    for values, count in ordered[:-2]:
        links.append((count / left, sparse(values)))
        left -= count
    return table, sparse(first_values), links, last
