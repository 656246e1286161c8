"""Findings on real-data-like tables: sparse long distances are pooled, each eval task gets its paragraph."""
import pandas as pd

from gradlab.report.findings import findings

COUNTS = {1: 500, 2: 40, 8: 12, 15: 5, 20: 2, 26: 1}


def _by_distance(acc_full_long=0.9):
    rows = []
    for task, base in (("lm", 0.1), ("agreement", 0.7)):
        for scheme in ("tbptt:1", "full"):
            for seed in (0, 1):
                for d, n in COUNTS.items():
                    acc = acc_full_long if (scheme == "full" and d >= 8 and task == "agreement") else base
                    rows.append(dict(part="lm", distribution="longest", task=task, scheme=scheme, seed=seed,
                                     run=f"{scheme}_{seed}", distance=d, n=n, accuracy=acc))
    return pd.DataFrame(rows)


def test_one_paragraph_per_eval_task_and_the_long_tail_pooled():
    text = findings({"by_distance": _by_distance()})
    assert len(text) == 2
    lm, agreement = sorted(text, key=lambda t: "task agreement" in t)
    assert lm.startswith("part lm, distribution longest, task lm: ")
    assert agreement.startswith("part lm, distribution longest, task agreement: ")
    # 12 + 5 + 2 + 1 items from 8 words on; none of these distances holds 20 alone
    assert "at the longest distances (8 words and more, pooled to 20 dev items" in agreement
    assert "full BPTT reaches accuracy 0.90" in agreement and "full BPTT reaches accuracy 0.10" in lm
    assert "26 words" not in agreement


def test_the_pooled_accuracy_comes_from_the_table():
    changed = findings({"by_distance": _by_distance(acc_full_long=0.4)})
    agreement = next(t for t in changed if "task agreement" in t)
    assert "full BPTT reaches accuracy 0.40" in agreement


def test_per_task_paragraphs_read_the_per_run_tables_without_a_task_column():
    """history (and the snapshots) are per run, not per eval task: a part's paragraphs both use them."""
    bd = _by_distance()
    bd = pd.concat([bd, bd.assign(scheme="adaptive:delta=0.1", run=bd["run"] + "_a")], ignore_index=True)
    history = pd.DataFrame([dict(part="lm", distribution="longest", run=f"adaptive_{seed}", scheme="adaptive:delta=0.1",
                                 seed=seed, epoch=e, tau=3 + seed + e) for seed in (0, 1) for e in (1, 2)])
    text = findings({"by_distance": bd, "history": history})
    assert len(text) == 2
    for paragraph in text:      # last epoch: tau 5 and 6
        assert "adaptive:delta=0.1 ended with tau = 5.5 (mean over seeds; range 5-6)" in paragraph
