"""Benchmark of the data layer: load, index and batch 100,000 agreement sentences.

Writes a synthetic agreement TSV (Zipf-distributed words over a 20,000-word
lexicon, 5-40 tokens per sentence) and a counts file to a temporary directory,
then times each step. Run:  python benchmarks/bench_data.py [--rows 100000]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from gradlab.data import Vocabulary, load_dataset


def write_agreement_tsv(path: Path, n_rows: int, seed: int = 0, n_lexicon: int = 20_000) -> Counter:
    """A synthetic file in the coursework's format; returns the token counts."""
    rng = np.random.default_rng(seed)
    lexicon = np.array([f"w{i}" for i in range(n_lexicon)], dtype=object)
    lengths = rng.integers(5, 41, size=n_rows)
    ids = np.minimum(rng.zipf(1.3, size=int(lengths.sum())) - 1, n_lexicon - 1)
    words = lexicon[ids]
    verb = rng.integers(1, lengths)
    subj = (rng.random(n_rows) * verb).astype(np.int64)
    plural = rng.random(n_rows) < 0.4
    counts: Counter = Counter()
    off = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("sentence\tsubj_idx\tverb_idx\tverb_pos\tverb\tinflected_verb\n")
        for i in range(n_rows):
            toks = words[off:off + lengths[i]].tolist()
            off += lengths[i]
            counts.update(toks)
            v, inf = ("run", "runs") if plural[i] else ("runs", "run")
            toks[verb[i]] = v
            fh.write(f"{' '.join(toks)}\t{subj[i]}\t{verb[i]}\t{'VBP' if plural[i] else 'VBZ'}\t{v}\t{inf}\n")
    return counts


def timed(label: str, fn, results: list):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    results.append((label, dt))
    print(f"{label:<52s} {dt:8.3f} s", flush=True)
    return out


def main(n_rows: int) -> None:
    results: list = []
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "agreement.tsv"
        counts = timed(f"write synthetic TSV ({n_rows:,} rows)", lambda: write_agreement_tsv(tsv, n_rows), results)
        vocab_file = Path(tmp) / "vocab.txt"
        vocab_file.write_text("".join(f"{w}\t{c}\n" for w, c in counts.most_common()), encoding="utf-8")
        print(f"  file size {tsv.stat().st_size / 2**20:.1f} MiB, {sum(counts.values()):,} tokens, "
              f"{len(counts):,} distinct words")

        ds = timed("load_dataset linzen (parse + vocab from corpus)",
                   lambda: load_dataset("linzen", path=tsv), results)
        timed("load_dataset linzen again (warm file cache)", lambda: load_dataset("linzen", path=tsv), results)
        timed("load_dataset linzen with vocab file (n_vocab=2000)",
              lambda: load_dataset("linzen", path=tsv, vocab=vocab_file), results)
        timed("Vocabulary.from_counts (n_words=2000)", lambda: Vocabulary.from_counts(vocab_file), results)
        timed("Dataset.build_vocab (n_words=2000)", lambda: ds.build_vocab(2000), results)
        for task in ds.tasks:
            b = timed(f"batch('{task}')", lambda: ds.batch(task), results)
            print(f"  {b}")
        timed("describe()", ds.describe, results)
        timed("dependencies('lm')", lambda: ds.dependencies("lm"), results)
        timed("agreement_items()", ds.agreement_items, results)
        train, dev = timed("split(dev_fraction=0.1)", lambda: ds.split(0.1, seed=0), results)
        idx = np.random.default_rng(1).choice(len(ds), size=1000, replace=False)
        timed("select 1,000 random sentences + batch('lm')", lambda: ds.batch("lm", idx), results)
        timed("iter_batches('number', 64, shuffle) over all",
              lambda: sum(b.n_tokens for _, b in ds.iter_batches("number", 64, shuffle=True)), results)
        timed(f"generate agreement:distance=8,n={n_rows}",
              lambda: load_dataset("agreement", distance=8, n=n_rows), results)
        timed(f"generate markov:n={n_rows}", lambda: load_dataset("markov", n=n_rows), results)
        timed(f"generate dyck:length=40,n={n_rows}", lambda: load_dataset("dyck", length=40, n=n_rows), results)
    core = sum(dt for label, dt in results if label.startswith(("load_dataset linzen (", "batch(", "describe",
                                                                  "dependencies", "split")))
    print(f"\nload + vocabulary + all three batches + describe + dependencies + split: {core:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    main(parser.parse_args().rows)
