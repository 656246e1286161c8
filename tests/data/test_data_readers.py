"""File formats: every malformed row names file and line; nothing is dropped unless asked."""
import re
import warnings

import numpy as np
import pytest

from gradlab.data import DataFormatError, DataWarning, load_dataset, read_agreement_tsv, read_text

HEADER = "sentence\tsubj_idx\tverb_idx\tverb_pos\tverb\tinflected_verb\n"
GOOD = [
    "the cat near the dogs sleeps .\t1\t5\tVBZ\tsleeps\tsleep",
    "the dogs run\t1\t2\tVBP\trun\truns",
]


def write_tsv(tmp_path, rows, name="agree.tsv", header=HEADER):
    p = tmp_path / name
    p.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return p


def where(path, line):
    return re.escape(f"{path}, line {line}: ")


def test_reads_good_rows(tmp_path):
    c = read_agreement_tsv(write_tsv(tmp_path, GOOD))
    assert c.n_sentences == 2
    assert c.lines.tolist() == [2, 3]
    assert c.fields["subj_idx"].tolist() == [1, 1]
    assert c.fields["verb_idx"].tolist() == [5, 2]
    assert c.fields["plural"].tolist() == [False, True]
    assert [c.lexicon[i] for i in c.tokens[c.offsets[1]:c.offsets[2]]] == ["the", "dogs", "run"]
    assert c.lexicon[c.fields["inflected"][0]] == "sleep"


def test_header_columns_in_any_order(tmp_path):
    header = "verb_pos\tsentence\tsubj_idx\tverb_idx\tverb\tinflected_verb\n"
    p = write_tsv(tmp_path, ["VBP\tthe dogs run\t1\t2\trun\truns"], header=header)
    c = read_agreement_tsv(p)
    assert c.fields["plural"].tolist() == [True]


def test_crlf_and_bom(tmp_path):
    p = tmp_path / "crlf.tsv"
    p.write_bytes(b"\xef\xbb\xbf" + (HEADER + GOOD[1] + "\n").replace("\n", "\r\n").encode())
    c = read_agreement_tsv(p)
    assert c.lexicon[c.fields["inflected"][0]] == "runs"


@pytest.mark.parametrize("row, message", [
    ("the dogs run\t1\t2\tVBP\trun", r"has 5 tab-separated column\(s\); expected 6"),
    ("the dogs run\t1\t2\tVBP\trun\truns\textra", r"has 7 tab-separated column\(s\); expected 6"),
    ("the dogs run\tone\t2\tVBP\trun\truns", r"subj_idx must be an integer; received 'one'"),
    ("the dogs run\t1\t2.0\tVBP\trun\truns", r"verb_idx must be an integer; received '2.0'"),
    ("the dogs run\t-1\t2\tVBP\trun\truns", r"subj_idx must be >= 0"),
    ("the dogs run\t1\t3\tVBP\trun\truns", r"verb_idx = 3 is past the sentence, which has 3 tokens"),
    ("the dogs run\t7\t9\tVBP\trun\truns", r"subj_idx = 7 is past the sentence"),
    ("the dogs run\t2\t1\tVBP\trun\truns", r"subj_idx \(2\) must be smaller than verb_idx \(1\)"),
    ("the dogs run\t2\t2\tVBP\trun\truns", r"subj_idx \(2\) must be smaller than verb_idx \(2\)"),
    ("the dogs run\t1\t2\tVB\trun\truns", r"verb_pos must be VBZ or VBP; received 'VB'"),
    (" \t1\t2\tVBP\trun\truns", r"the sentence is empty"),
    ("the dogs run\t1\t2\tVBP\t\truns", r"verb must be one word"),
    ("", r"has 1 tab-separated column\(s\)"),
])
def test_malformed_row_names_file_and_line(tmp_path, row, message):
    p = write_tsv(tmp_path, [GOOD[0], row, GOOD[1]])
    with pytest.raises(DataFormatError, match=where(p, 3) + message) as info:
        read_agreement_tsv(p)
    assert info.value.line == 3 and info.value.path == str(p)


def test_bad_utf8_names_file_and_line(tmp_path):
    p = tmp_path / "latin1.tsv"
    p.write_bytes(HEADER.encode() + GOOD[0].encode() + b"\n" + "the café runs\t1\t2\tVBZ\truns\trun\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=where(p, 3) + r"is not valid UTF-8 \(byte 0xe9 at column 8\)"):
        read_agreement_tsv(p)


def test_wrong_header(tmp_path):
    p = write_tsv(tmp_path, GOOD, header="sentence\tsubj\tverb_idx\tverb_pos\tverb\tinflected_verb\n")
    with pytest.raises(DataFormatError, match=where(p, 1) + "the header must name the tab-separated columns"):
        read_agreement_tsv(p)


def test_missing_header(tmp_path):
    p = write_tsv(tmp_path, GOOD, header="")
    with pytest.raises(DataFormatError, match=where(p, 1) + "the header must name"):
        read_agreement_tsv(p)


def test_empty_file_and_header_only(tmp_path):
    p = tmp_path / "empty.tsv"
    p.write_text("")
    with pytest.raises(DataFormatError, match=where(p, 1) + "the file is empty"):
        read_agreement_tsv(p)
    p = write_tsv(tmp_path, [], name="header_only.tsv")
    with pytest.raises(DataFormatError, match=where(p, 2) + "the file has no data rows"):
        read_agreement_tsv(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_agreement_tsv(tmp_path / "nope.tsv")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_agreement_tsv(tmp_path)


def test_skip_bad_rows_reports_count_and_lines(tmp_path):
    rows = [GOOD[0], "the dogs run\t1\t2\tVB\trun\truns", GOOD[1], "x\t0", "the dog runs\t1\t2\tVBZ\truns\trun"]
    p = write_tsv(tmp_path, rows)
    with pytest.warns(DataWarning, match=r"skipped 2 bad row\(s\).*first: line 3"):
        ds = load_dataset("linzen", path=p, skip_bad_rows=True)
    assert ds.n_skipped == 2
    assert [line for line, _ in ds.skipped] == [3, 5]
    assert len(ds) == 3
    assert ds.describe()["line"].tolist() == [2, 4, 6]
    assert ds.words(2) == ["the", "dog", "runs"]


def test_skip_bad_rows_with_bad_utf8(tmp_path):
    p = tmp_path / "mixed.tsv"
    p.write_bytes(HEADER.encode() + b"the caf\xe9 runs\t1\t2\tVBZ\truns\trun\n" + GOOD[1].encode() + b"\n")
    with pytest.warns(DataWarning, match="skipped 1 bad row"):
        c = read_agreement_tsv(p, skip_bad_rows=True)
    assert c.skipped[0][0] == 2 and "UTF-8" in c.skipped[0][1]
    assert c.n_sentences == 1


def test_no_warning_without_bad_rows(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset("linzen", path=write_tsv(tmp_path, GOOD), skip_bad_rows=True)
    assert ds.n_skipped == 0


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    p = write_tsv(tmp_path, ["x\t0"])
    with pytest.raises(DataFormatError, match=r"no data rows \(1 bad row\(s\) skipped\)"):
        read_agreement_tsv(p, skip_bad_rows=True)


# ---------------------------------------------------------------------- plain text
def test_text_reads_lines(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the cat  sat\n a dog\n")
    c = read_text(p)
    assert c.n_sentences == 2
    assert np.diff(c.offsets).tolist() == [3, 2]


def test_text_empty_line_names_file_and_line(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("the cat\n\nthe dog\n")
    with pytest.raises(DataFormatError, match=where(p, 2) + r"the sentence is empty"):
        read_text(p)


def test_text_bad_utf8_names_file_and_line(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes(b"the cat\nthe dog\n\xff\xfe\n")
    with pytest.raises(DataFormatError, match=where(p, 3) + "is not valid UTF-8"):
        read_text(p)


def test_text_skip_bad_lines(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes(b"the cat\n   \n\xff\nthe dog\n")
    with pytest.warns(DataWarning, match=r"skipped 2 bad line\(s\)"):
        ds = load_dataset("text", path=p, skip_bad_rows=True)
    assert len(ds) == 2 and ds.n_skipped == 2
    assert ds.describe()["line"].tolist() == [1, 4]
