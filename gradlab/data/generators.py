"""Built-in datasets, generated deterministically from a seed.

Each generator returns a :class:`~gradlab.data.readers.RawCorpus` whose lexicon is
the dataset's fixed vocabulary (special tokens first), plus the dependencies it
planted, in *word coordinates*: word ``source`` of a sentence determines word
``dependent`` (``-1`` stands for the ``<s>`` before the sentence, ``n`` for the
``</s>`` after its n words). :class:`~gradlab.data.dataset.Dataset` converts them
to the step coordinates of each task's batch.

The vocabulary of a generator depends only on its grammar parameters (never on
``seed``, ``n`` or the distance), so a model trained on one setting can be
evaluated on another.
"""
from __future__ import annotations

import numpy as np

from ..batch import offsets_from_lengths
from .readers import RawCorpus
from .vocab import SPECIALS

# ---------------------------------------------------------------------- agreement
#: (singular, plural) noun pairs.
NOUNS = (("boy", "boys"), ("girl", "girls"), ("dog", "dogs"), ("cat", "cats"), ("teacher", "teachers"),
         ("farmer", "farmers"), ("author", "authors"), ("pilot", "pilots"), ("doctor", "doctors"),
         ("senator", "senators"))
#: (VBZ, VBP) verb pairs; used for the main verb and inside relative clauses.
VERBS = (("likes", "like"), ("sees", "see"), ("knows", "know"), ("admires", "admire"),
         ("follows", "follow"), ("helps", "help"), ("hates", "hate"), ("meets", "meet"))
PREPOSITIONS = ("near", "behind", "with", "beside", "above")
ADJECTIVES = ("old", "young", "tall", "happy", "small", "famous")
ADVERBS = ("often", "really", "also", "rarely")
MATERIALS = ("mixed", "pp", "rc")

AGREEMENT_WORDS = (SPECIALS + ("the", "that", ".")
                   + tuple(w for pair in NOUNS for w in pair) + tuple(w for pair in VERBS for w in pair)
                   + PREPOSITIONS + ADJECTIVES + ADVERBS)
_AW = {w: i for i, w in enumerate(AGREEMENT_WORDS)}


def agreement_sentence(rng: np.random.Generator, distance: int, plural: bool, p_attractor: float = 0.5,
                       material: str = "mixed") -> tuple[list, int, int, int, int]:
    """One sentence ``the [adj] SUBJ <material> VERB the NOUN .`` with ``verb_idx - subj_idx == distance``.

    The material between subject and verb is ``distance - 1`` words: prepositional
    phrases ``P the [adj..] N`` (3+ words), object relative clauses ``that the [adj..]
    N V`` (4+ words, V agrees with N), then adjectives inside those phrases and adverbs
    before the verb to fill the exact length. Every intervening noun is an *attractor*
    (the other number than the subject) with probability ``p_attractor``.

    The sentence takes a fixed number of uniform draws from ``rng`` (set by
    ``distance`` alone) and uses them the same way for either ``plural``, so the same
    generator state with the other ``plural`` gives the same sentence with every
    number flipped: subject, main verb, and the intervening nouns and relative-clause
    verbs (which keep their attractor status). The main verb always agrees with the
    subject.

    Returns
    -------
    words : list of str
    subj_idx, verb_idx : int
    n_attractors : int
        Intervening nouns of the other number.
    verb_pair : int
        Index into :data:`VERBS` of the main verb.
    """
    rng = _Uniforms(rng.random(_n_draws(distance)).tolist())
    words = ["the"]
    if rng.random() < 0.3:
        words.append(ADJECTIVES[rng.integers(len(ADJECTIVES))])
    subj_noun = rng.integers(len(NOUNS))
    subj_idx = len(words)
    words.append(NOUNS[subj_noun][int(plural)])

    r = distance - 1
    pieces = []
    while True:
        options = [k for k, size in (("pp", 3), ("rc", 4)) if r >= size and material in ("mixed", k)]
        if not options:
            break
        kind = options[rng.integers(len(options))]
        attractor = rng.random() < p_attractor
        piece = {"kind": kind, "noun": rng.integers(len(NOUNS)), "attractor": attractor, "adjs": [],
                 "prep": rng.integers(len(PREPOSITIONS)), "verb": rng.integers(len(VERBS))}
        pieces.append(piece)
        r -= 3 if kind == "pp" else 4
    adverbs = []
    for _ in range(r):
        # a leftover word lengthens a phrase (adjective) or precedes the verb (adverb)
        if pieces and rng.random() < 0.5:
            pieces[rng.integers(len(pieces))]["adjs"].append(ADJECTIVES[rng.integers(len(ADJECTIVES))])
        else:
            adverbs.append(ADVERBS[rng.integers(len(ADVERBS))])
    n_attractors = 0
    for p in pieces:
        noun_plural = plural != p["attractor"]
        n_attractors += p["attractor"]
        noun = NOUNS[p["noun"]][int(noun_plural)]
        if p["kind"] == "pp":
            words += [PREPOSITIONS[p["prep"]], "the", *p["adjs"], noun]
        else:
            words += ["that", "the", *p["adjs"], noun, VERBS[p["verb"]][int(noun_plural)]]
    words += adverbs
    verb_pair = rng.integers(len(VERBS))
    verb_idx = len(words)
    words.append(VERBS[verb_pair][int(plural)])
    obj = NOUNS[rng.integers(len(NOUNS))][int(rng.random() < 0.5)]
    words += ["the", obj, "."]
    return words, subj_idx, verb_idx, n_attractors, verb_pair


class _Uniforms:
    """Uniform draws taken in advance: one vectorised call per sentence instead of one per choice."""

    __slots__ = ("_u", "_i")

    def __init__(self, u: list):
        self._u, self._i = u, 0

    def random(self) -> float:
        x = self._u[self._i]
        self._i += 1
        return x

    def integers(self, k: int) -> int:
        return int(self.random() * k)


def _n_draws(distance: int) -> int:
    # at most 3 for the subject, 5 per phrase (>= 3 words each), 3 per filler word (<= 3), 3 after the verb
    return 16 + 2 * distance


def _distances(rng, n: int, distance: int, min_distance: int) -> np.ndarray:
    if min_distance == distance:
        return np.full(n, distance, dtype=np.int64)
    return rng.integers(min_distance, distance + 1, size=n).astype(np.int64)


def generate_agreement(*, distance: int, min_distance: int, n: int, seed: int, p_attractor: float,
                       p_plural: float, material: str) -> RawCorpus:
    """``n`` agreement sentences; see :func:`agreement_sentence`.

    Per sentence, one uniform draw decides the subject's number (plural when
    < ``p_plural``) and the distance is uniform on ``min_distance..distance``; the
    draws are the same for every ``p_plural``.
    """
    rng = np.random.default_rng(seed)
    dists = _distances(rng, n, distance, min_distance)
    tokens, lengths = [], np.empty(n, dtype=np.int64)
    subj = np.empty(n, dtype=np.int64)
    verb = np.empty(n, dtype=np.int64)
    plural = np.empty(n, dtype=bool)
    n_attr = np.empty(n, dtype=np.int64)
    vpair = np.empty(n, dtype=np.int64)
    for i in range(n):
        plural[i] = rng.random() < p_plural
        words, subj[i], verb[i], n_attr[i], vpair[i] = agreement_sentence(rng, int(dists[i]), bool(plural[i]),
                                                                          p_attractor, material)
        tokens.extend(_AW[w] for w in words)
        lengths[i] = len(words)
    vz = np.array([_AW[p[0]] for p in VERBS], dtype=np.int64)
    vp = np.array([_AW[p[1]] for p in VERBS], dtype=np.int64)
    verb_id = np.where(plural, vp[vpair], vz[vpair])
    inflected_id = np.where(plural, vz[vpair], vp[vpair])
    offsets = offsets_from_lengths(lengths)
    fields = {"subj_idx": subj, "verb_idx": verb, "plural": plural, "verb": verb_id,
              "inflected": inflected_id, "n_attractors": n_attr}
    dep_ptr = np.arange(n + 1, dtype=np.int64)
    return _corpus(AGREEMENT_WORDS, tokens, offsets, fields, dep_ptr, subj.copy(), verb.copy())


# ---------------------------------------------------------------------- recall
#: The cue after which the key must be reproduced.
RECALL_CUE = "?"


def recall_words(n_keys: int, n_distractors: int) -> tuple:
    return (SPECIALS + tuple(f"k{i}" for i in range(n_keys)) + tuple(f"x{i}" for i in range(n_distractors))
            + (RECALL_CUE,))


def generate_recall(*, distance: int, min_distance: int, n: int, seed: int, n_keys: int,
                    n_distractors: int) -> RawCorpus:
    """``key x x ... x ? key``: the key word, ``distance - 2`` distractors, the cue, the key again.

    Word distance from the key to its copy is ``distance``. Keys (``k0..``) and
    distractors (``x0..``) are disjoint symbol sets, drawn uniformly.
    """
    words = recall_words(n_keys, n_distractors)
    key0, x0, cue = len(SPECIALS), len(SPECIALS) + n_keys, len(words) - 1
    rng = np.random.default_rng(seed)
    dists = _distances(rng, n, distance, min_distance)
    keys = rng.integers(n_keys, size=n) + key0
    lengths = dists + 1
    offsets = offsets_from_lengths(lengths)
    tokens = rng.integers(n_distractors, size=int(offsets[-1])).astype(np.int64) + x0
    starts = offsets[:-1]
    tokens[starts] = keys
    tokens[starts + dists - 1] = cue
    tokens[starts + dists] = keys
    fields = {"key": keys.astype(np.int64)}
    return _corpus(words, tokens, offsets, fields, np.arange(n + 1, dtype=np.int64),
                   np.zeros(n, dtype=np.int64), dists.copy())


# ---------------------------------------------------------------------- Dyck-2
DYCK_WORDS = SPECIALS + ("(", ")", "[", "]")
_DW = {w: i for i, w in enumerate(DYCK_WORDS)}


def generate_dyck(*, length: int, max_depth: int, p_open: float, n: int, seed: int) -> RawCorpus:
    """Balanced strings of ``length`` brackets of two types, nesting at most ``max_depth`` deep.

    A random walk: open (a uniformly drawn type) with probability ``p_open`` unless
    the depth is 0 (must open), ``max_depth`` or equal to the brackets left (must
    close). Each closing bracket depends on its opening bracket.
    """
    rng = np.random.default_rng(seed)
    opener = np.array([_DW["("], _DW["["]], dtype=np.int64)
    closer = np.array([_DW[")"], _DW["]"]], dtype=np.int64)
    tok = np.empty((n, length), dtype=np.int64)
    type_stack = np.zeros((n, max_depth), dtype=np.int64)
    pos_stack = np.zeros((n, max_depth), dtype=np.int64)
    depth = np.zeros(n, dtype=np.int64)
    max_seen = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    dep_sent, dep_src, dep_dep = [], [], []
    for t in range(length):
        u = rng.random(n)
        kind = rng.integers(2, size=n)
        left = length - t
        must_close = (depth == left) | (depth == max_depth)
        do_open = (depth == 0) | (~must_close & (u < p_open))
        o = rows[do_open]
        type_stack[o, depth[o]] = kind[o]
        pos_stack[o, depth[o]] = t
        tok[o, t] = opener[kind[o]]
        depth[o] += 1
        c = rows[~do_open]
        depth[c] -= 1
        tok[c, t] = closer[type_stack[c, depth[c]]]
        dep_sent.append(c)
        dep_src.append(pos_stack[c, depth[c]])
        dep_dep.append(np.full(c.size, t, dtype=np.int64))
        np.maximum(max_seen, depth, out=max_seen)
    sent = np.concatenate(dep_sent) if dep_sent else np.zeros(0, dtype=np.int64)
    src = np.concatenate(dep_src) if dep_src else np.zeros(0, dtype=np.int64)
    dep = np.concatenate(dep_dep) if dep_dep else np.zeros(0, dtype=np.int64)
    order = np.lexsort((dep, sent))
    dep_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sent, minlength=n), out=dep_ptr[1:])
    offsets = np.arange(n + 1, dtype=np.int64) * length
    return _corpus(DYCK_WORDS, tok.reshape(-1), offsets, {"depth": max_seen}, dep_ptr, src[order], dep[order])


def generate_dyck_distance(*, distance: int, min_distance: int, max_depth: int, p_open: float, n: int,
                           seed: int) -> RawCorpus:
    """Dyck-2 with a controlled long dependency: ``OPEN <balanced filler> CLOSE``.

    Each sentence is a bracket (uniform type) around a balanced Dyck-2 string of
    ``d - 1`` brackets nested at most ``max_depth - 1`` deep (:func:`generate_dyck`), so
    the outer closing bracket is ``d`` words after its opener: the sentence's longest
    dependency, ``d`` odd and uniform on the odd numbers of ``min_distance..distance``
    (both odd). Every closing bracket, inner ones included, depends on its opener.
    """
    rng = np.random.default_rng(seed)
    lo, hi = (min_distance - 1) // 2, (distance - 1) // 2
    dists = 2 * (rng.integers(lo, hi + 1, size=n) if lo < hi else np.full(n, hi)) + 1
    kinds = rng.integers(2, size=n)
    seeds = rng.integers(2 ** 62, size=hi + 1)
    offsets = offsets_from_lengths(dists + 1)
    tokens = np.empty(int(offsets[-1]), dtype=np.int64)
    starts = offsets[:-1]
    tokens[starts] = np.array([_DW["("], _DW["["]])[kinds]
    tokens[starts + dists] = np.array([_DW[")"], _DW["]"]])[kinds]
    depth = np.ones(n, dtype=np.int64)
    dep_sent, dep_src, dep_dep = [np.arange(n)], [np.zeros(n, dtype=np.int64)], [dists.copy()]
    for k in np.unique(dists):
        rows = np.flatnonzero(dists == k)
        if k < 3:
            continue
        filler = generate_dyck(length=int(k) - 1, max_depth=max_depth - 1, p_open=p_open, n=rows.size,
                               seed=int(seeds[(k - 1) // 2]))
        body = filler.tokens.reshape(rows.size, int(k) - 1)
        tokens[(starts[rows] + 1)[:, None] + np.arange(int(k) - 1)] = body
        depth[rows] = filler.fields["depth"] + 1
        per = np.diff(filler.dep_ptr)
        dep_sent.append(np.repeat(rows, per))
        dep_src.append(filler.dep_source + 1)
        dep_dep.append(filler.dep_dependent + 1)
    sent, src, dep = (np.concatenate(a).astype(np.int64) for a in (dep_sent, dep_src, dep_dep))
    order = np.lexsort((dep, sent))
    dep_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sent, minlength=n), out=dep_ptr[1:])
    return _corpus(DYCK_WORDS, tokens, offsets, {"depth": depth}, dep_ptr, src[order], dep[order])


# ---------------------------------------------------------------------- Markov
def markov_words(n_symbols: int) -> tuple:
    return SPECIALS + tuple(f"w{i}" for i in range(n_symbols))


def markov_table(*, order: int, n_symbols: int, concentration: float, chain_seed: int) -> np.ndarray:
    """Next-symbol distributions of the n-gram source, one row per context.

    Returns
    -------
    float64 array, shape ((n_symbols + 1) ** (order - 1), n_symbols)
        Row ``c`` is P(next symbol | context c); a context is the last ``order - 1``
        symbols as a base-(n_symbols + 1) number, digit ``n_symbols`` standing for
        ``<s>`` before the sentence. Rows are Dirichlet(concentration) draws.
    """
    rng = np.random.default_rng(chain_seed)
    n_ctx = (n_symbols + 1) ** (order - 1)
    return rng.dirichlet(np.full(n_symbols, concentration), size=n_ctx)


def generate_markov(*, order: int, n_symbols: int, length: int, concentration: float, chain_seed: int,
                    n: int, seed: int) -> RawCorpus:
    """Sentences from an n-gram source of the given ``order`` (the control: no long dependencies).

    Each word depends only on the ``order - 1`` words before it (``<s>`` padding at
    the start). After the first word, the sentence ends with probability
    1 / ``length`` at every step, independently of the words, so the mean length is
    ``length`` and nothing needs to be counted. The table comes from ``chain_seed``
    and the sentences from ``seed``, so datasets with different seeds share a source.
    """
    table = markov_table(order=order, n_symbols=n_symbols, concentration=concentration, chain_seed=chain_seed)
    cum = np.cumsum(table, axis=1)
    cum[:, -1] = 1.0
    rng = np.random.default_rng(seed)
    base = n_symbols + 1
    n_ctx = base ** (order - 1)
    ctx = np.full(n, n_ctx - 1, dtype=np.int64)  # all digits = <s>
    active = np.arange(n)
    steps, lengths = [], np.zeros(n, dtype=np.int64)
    p_end = 1.0 / length
    while active.size:
        u = rng.random(active.size)
        sym = (cum[ctx[active]] < u[:, None]).sum(axis=1)
        np.minimum(sym, n_symbols - 1, out=sym)  # guards u == 1.0 against rounding in cum
        steps.append((active, lengths[active].copy(), sym))
        lengths[active] += 1
        if order > 1:
            ctx[active] = (ctx[active] * base + sym) % n_ctx
        ends = rng.random(active.size) < p_end
        active = active[~ends]
    offsets = offsets_from_lengths(lengths)
    tokens = np.empty(int(offsets[-1]), dtype=np.int64)
    for rows, t, sym in steps:
        tokens[offsets[rows] + t] = sym + len(SPECIALS)
    return _corpus(markov_words(n_symbols), tokens, offsets, {}, None, None, None)


# ---------------------------------------------------------------------- helpers


def _corpus(words, tokens, offsets, fields, dep_ptr, dep_source, dep_dependent) -> RawCorpus:
    return RawCorpus(list(words), np.asarray(tokens, dtype=np.int32), offsets, None, [], fields,
                     dep_ptr=dep_ptr,
                     dep_source=None if dep_source is None else np.asarray(dep_source, dtype=np.int64),
                     dep_dependent=None if dep_dependent is None else np.asarray(dep_dependent, dtype=np.int64))
