"""Readers of the standard agreement test sets (Linzen et al.'s items; Gulordava et al.'s English set).

The tests write tiny files in the published formats themselves: the real data's licence keeps it out
of the repository. An integration test reads the real files when ../shared/data has them.
"""
import re
from pathlib import Path

import pytest

from gradlab.data import DataFormatError
from gradlab.data.readers import TEST_SET_COLUMNS, read_gulordava_set, read_linzen_testset

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "colorlessgreen"

TEXT = ["the keys to the cabinet are on the table . <eos>",
        "the author that the guards like laughs . <eos>",
        "dogs bark . <eos>"]
GOLD = ["5\tare\tis\t1", "6\tlaughs\tlaugh\t1", "1\tbark\tbarks\t0"]

TAB_HEADER = ("pattern\tconstr_id\tsent_id\tcorrect_number\tform\tclass\ttype\tprefix\tn_attr\tpunct\tfreq\t"
              "len_context\tlen_prefix\tsent")


def tab_row(pattern, constr, sent_id, number, form, cls, typ, sent, n_prefix, n_attr=0):
    words = sent.replace('""', '"').strip('"').split()
    return "\t".join([pattern, str(constr), str(sent_id), number, form, cls, typ, " ".join(words[:n_prefix]),
                      str(n_attr), "False", "100", "3", str(n_prefix), sent])


TAB = [tab_row("NOUN_VERB", 0, 0, "sing", "is", "correct", "original", "The thing to keep is clear . <eos>", 4),
       tab_row("NOUN_VERB", 0, 0, "sing", "are", "wrong", "original", "The thing to keep is clear . <eos>", 4),
       tab_row("NOUN_VERB", 0, 1, "plur", "sleep", "correct", "generated",
               '"The pens "" to "" eat sleep green . <eos>"', 5, n_attr=1),
       tab_row("NOUN_VERB", 0, 1, "plur", "sleeps", "wrong", "generated",
               '"The pens "" to "" eat sleep green . <eos>"', 5, n_attr=1)]


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return p


def linzen_files(tmp_path, text=TEXT, gold=GOLD):
    return write(tmp_path, "set.text", text), write(tmp_path, "set.gold", gold)


def where(path, line):
    return re.escape(f"{path}, line {line}: ")


# ---------------------------------------------------------------------- Linzen et al.
def test_linzen_reads_items_and_finds_the_gold_file(tmp_path):
    text, _ = linzen_files(tmp_path)
    ts = read_linzen_testset(text)
    assert ts.name == "linzen_testset" and len(ts) == 3
    assert tuple(ts.items.columns) == TEST_SET_COLUMNS
    first = ts.items.iloc[0]
    assert first["prefix"] == ("the", "keys", "to", "the", "cabinet")
    assert (first["correct"], first["wrong"], first["n_attractors"], first["line"]) == ("are", "is", 1, 1)
    assert ts.items["n_attractors"].tolist() == [1, 1, 0]
    assert set(ts.items["type"]) == {"original"}


def test_linzen_gold_path_may_be_given_and_named_anything(tmp_path):
    text = write(tmp_path, "a.txt", TEXT)
    gold = write(tmp_path, "b.tsv", GOLD)
    assert read_linzen_testset(text, gold).items["correct"].tolist() == ["are", "laughs", "bark"]


def test_linzen_missing_gold_file(tmp_path):
    text = write(tmp_path, "lonely.text", TEXT)
    with pytest.raises(FileNotFoundError, match="gold_path: .*lonely.gold"):
        read_linzen_testset(text)


@pytest.mark.parametrize("gold_line, message", [
    ("5\tare\tis", r"has 3 tab-separated column\(s\); expected 4"),
    ("five\tare\tis\t1", r"the verb index must be an integer; received 'five'"),
    ("-1\tare\tis\t1", r"the verb index must be >= 0"),
    ("11\tare\tis\t1", r"the verb index 11 is past the sentence on line 1 .*which has 11 tokens"),
    ("5\tare are\tis\t1", r"the correct form must be one word"),
    ("5\tare\t\t1", r"the wrong form must be one word"),
    ("5\tare\tis\tmany", r"n_attractors must be an integer; received 'many'"),
])
def test_linzen_bad_gold_line_names_file_and_line(tmp_path, gold_line, message):
    text, gold = linzen_files(tmp_path, gold=[gold_line] + GOLD[1:])
    with pytest.raises(DataFormatError, match=where(gold, 1) + message):
        read_linzen_testset(text, gold)


def test_linzen_blank_sentence_names_the_text_file(tmp_path):
    text, gold = linzen_files(tmp_path, text=[TEXT[0], "  ", TEXT[2]])
    with pytest.raises(DataFormatError, match=where(text, 2) + "the sentence is empty"):
        read_linzen_testset(text, gold)


def test_linzen_files_must_be_line_aligned(tmp_path):
    text, gold = linzen_files(tmp_path, gold=GOLD[:2])
    with pytest.raises(DataFormatError, match=where(gold, 3) + r"the file ends here \(2 lines\).*line-aligned"):
        read_linzen_testset(text, gold)


def test_linzen_empty_gold(tmp_path):
    text, gold = linzen_files(tmp_path, gold=[])
    with pytest.raises(DataFormatError, match=where(gold, 1) + "the file is empty"):
        read_linzen_testset(text, gold)


# ---------------------------------------------------------------------- Gulordava et al.
def test_gulordava_pairs_rows_and_unquotes(tmp_path):
    ts = read_gulordava_set(write(tmp_path, "g.tab", [TAB_HEADER] + TAB))
    assert ts.name == "gulordava" and len(ts) == 2
    a, b = ts.items.iloc[0], ts.items.iloc[1]
    assert a["prefix"] == ("The", "thing", "to", "keep")
    assert (a["correct"], a["wrong"], a["type"], a["line"], a["n_attractors"]) == ("is", "are", "original", 2, 0)
    assert b["prefix"] == ("The", "pens", '"', "to", '"')
    assert (b["correct"], b["wrong"], b["type"], b["line"], b["n_attractors"]) == ("sleep", "sleeps", "generated", 4, 1)
    assert b["pattern"] == "NOUN_VERB"


def test_gulordava_wrong_row_first_is_fine(tmp_path):
    ts = read_gulordava_set(write(tmp_path, "g.tab", [TAB_HEADER, TAB[1], TAB[0]]))
    assert (ts.items.loc[0, "correct"], ts.items.loc[0, "line"]) == ("is", 3)


@pytest.mark.parametrize("edit, line, message", [
    (lambda r: r.replace("\tcorrect\t", "\tright\t"), 2, "class must be correct or wrong; received 'right'"),
    (lambda r: r.replace("\toriginal\t", "\tnonsense\t"), 2, r"type must be one of \('original', 'generated'\)"),
    (lambda r: r.replace("\t4\tThe", "\tfour\tThe"), 2, "len_prefix must be an integer; received 'four'"),
    (lambda r: r.replace("\t4\tThe", "\t9\tThe"), 2, "len_prefix = 9 leaves no verb in the sentence, which has 8"),
    (lambda r: r.replace("\tis\tcorrect", "\tis it\tcorrect"), 2, "form must be one word"),
    (lambda r: r + "\textra", 2, r"has 15 tab-separated field\(s\); the header has 14"),
])
def test_gulordava_bad_row_names_file_and_line(tmp_path, edit, line, message):
    p = write(tmp_path, "g.tab", [TAB_HEADER, edit(TAB[0])] + TAB[1:])
    with pytest.raises(DataFormatError, match=where(p, line) + message):
        read_gulordava_set(p)


def test_gulordava_unpaired_and_duplicated_rows(tmp_path):
    p = write(tmp_path, "g.tab", [TAB_HEADER, TAB[0], TAB[2], TAB[3]])
    with pytest.raises(DataFormatError, match=where(p, 2) + r"item .* has a 'correct' row but no 'wrong' row"):
        read_gulordava_set(p)
    p = write(tmp_path, "g.tab", [TAB_HEADER, TAB[0], TAB[0]])
    with pytest.raises(DataFormatError, match=where(p, 3) + r"item .* has a second 'correct' row \(the first is on line 2\)"):
        read_gulordava_set(p)
    p = write(tmp_path, "g.tab", [TAB_HEADER, TAB[0], TAB[1].replace("keep is", "keep was")])
    with pytest.raises(DataFormatError, match=where(p, 3) + "the correct and wrong rows of item .* differ in sent or len_prefix"):
        read_gulordava_set(p)


def test_gulordava_header_and_empty_file(tmp_path):
    p = write(tmp_path, "g.tab", [TAB_HEADER.replace("len_prefix", "lp")] + TAB)
    with pytest.raises(DataFormatError, match=where(p, 1) + r"the header lacks the column\(s\) \['len_prefix'\]"):
        read_gulordava_set(p)
    p = write(tmp_path, "g.tab", [TAB_HEADER])
    with pytest.raises(DataFormatError, match=where(p, 2) + "the file has no items"):
        read_gulordava_set(p)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_gulordava_set(tmp_path / "missing.tab")


# ---------------------------------------------------------------------- the real files
@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/colorlessgreen is absent")
def test_real_files_read_as_published():
    linzen = read_linzen_testset(REAL / "linzen_testset" / "subj_agr_filtered.text")
    assert len(linzen) == 7489  # README.md of the data
    assert sorted(linzen.items["n_attractors"].unique()) == [0, 1, 2, 3, 4]
    gul = read_gulordava_set(REAL / "English" / "generated.tab")
    assert len(gul) == 410
    assert gul.items["type"].value_counts().to_dict() == {"generated": 369, "original": 41}
