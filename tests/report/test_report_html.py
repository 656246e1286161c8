"""Saving figures and writing index.html."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from gradlab.report.frames import COLUMN_DOCS
from gradlab.report.html import render_index, write_figure


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def small_figure() -> Figure:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1.0, 0.5, 0.25], label="a")
    ax.set_yscale("log")
    ax.set_title("tiny")
    return fig


def test_write_figure_writes_png_and_svg_and_no_temp_files(tmp_path):
    fig = small_figure()
    paths = write_figure(fig, tmp_path / "out", "profile")
    assert paths == [tmp_path / "out" / "profile.png", tmp_path / "out" / "profile.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in paths[1].read_bytes()[:2000]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["profile.png", "profile.svg"]
    assert all(p.stat().st_mode & 0o777 == 0o666 & ~_umask() for p in paths)  # like open(), not mkstemp's 0600
    assert fig.axes == []  # closed (cleared)


def test_write_figure_is_deterministic_and_overwrites(tmp_path):
    first = [p.read_bytes() for p in write_figure(small_figure(), tmp_path / "a", "f")]
    second = [p.read_bytes() for p in write_figure(small_figure(), tmp_path / "b", "f")]
    assert first == second
    again = write_figure(small_figure(), tmp_path / "a", "f")
    assert [p.read_bytes() for p in again] == first
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["f.png", "f.svg"]


def test_write_figure_cleans_up_after_failure(tmp_path, monkeypatch):
    import gradlab.report.html as module

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_figure(small_figure(), tmp_path, "f")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../evil", "a/b", ".hidden", ""])
def test_write_figure_rejects_bad_names(tmp_path, name):
    with pytest.raises(ValueError, match="name must be a plain file stem"):
        write_figure(small_figure(), tmp_path, name)


def test_write_figure_explains_none(tmp_path):
    with pytest.raises(TypeError, match="returned None"):
        write_figure(None, tmp_path, "f")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("report")
    write_figure(small_figure(), tmp_path, "profile")
    write_figure(small_figure(), tmp_path, "gap")
    summary = pd.DataFrame({
        "dataset": ["agreement:distance=8", "recall<keys>"],
        "state": ["init:scale=0.316228,seed=0,activation=sigmoid", "init:scale=0.316228,seed=0,activation=sigmoid"],
        "beta": [0.6123456, 1.05],
        "half_life": [1.3567, np.inf],
        "tau_10": [3.0, np.nan],
        "tau_1": [7.0, np.nan],
        "spectral_radius": [1.25, 2.5],
        "sigma_max": [2.0, 3.0],
        "mean_fprime": [0.2, 0.21],
        "reach": [12, 40],
    })
    parameters = {"spec": '[analysis]\nname = "vanishing"\ndatasets = ["agreement", "recall"]\n# a < b & c\n',
                  "gradlab version": "0.1.0", "seed": 1234, "options": {"K": 40, "note": "<b>bold</b>"}}
    path = render_index(tmp_path, title="Vanishing <gradients> & truncation",
                        figures=[("profile", "Vanishing profile: median & quartiles"), ("gap", "Truncation gap")],
                        summary=summary, parameters=parameters,
                        tables={"summary": "summary.csv", "gap": "gap.csv", "custom": "extra.csv"})
    return path, path.read_text(encoding="utf-8")


def test_render_index_layout(report):
    path, page = report
    tmp_path = path.parent
    assert path.name == "index.html"
    assert page.startswith("<!DOCTYPE html>")
    for name in ("profile", "gap"):
        assert f'<a href="{name}.svg"><img src="{name}.png"' in page
    assert "Vanishing profile: median &amp; quartiles" in page
    assert page.index('src="profile.png"') < page.index('src="gap.png"')
    assert 'width="360" height="240"' in page  # 3 x 2 inches at 120 dpi
    # self-contained: no scripts, no external resources
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gap.png", "gap.svg", "index.html", "profile.png",
                                                          "profile.svg"]


def test_render_index_summary_values(report):
    _, page = report
    for text in ("0.6123", "1.05", "1.357", "∞", ">3<", ">7<", "–", ">12<", ">40<", "agreement:distance=8"):
        assert text in page, text
    assert "recall&lt;keys&gt;" in page and "recall<keys>" not in page


def test_render_index_escapes_parameters_and_title(report):
    _, page = report
    assert "<title>Vanishing &lt;gradients&gt; &amp; truncation</title>" in page
    assert "# a &lt; b &amp; c" in page
    assert 'name = &quot;vanishing&quot;' in page
    assert "seed            = 1234" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page


def test_render_index_lists_tables_with_column_docs(report):
    _, page = report
    assert '<a href="gap.csv"><code>gap.csv</code></a>' in page
    assert '<a href="extra.csv">' in page
    for column in COLUMN_DOCS["gap"]:
        assert f"<code>{column}</code>" in page
    assert "||g - g_full|| / ||g_full||" in page


def test_render_index_custom_column_docs(tmp_path):
    path = render_index(tmp_path, title="t", figures=[], summary=None, parameters={}, tables={"x": "x.csv"},
                        column_docs={"x": {"alpha": "first <column>"}})
    page = path.read_text(encoding="utf-8")
    assert "<code>alpha</code>" in page and "first &lt;column&gt;" in page
    assert "No figures." in page and "No summary rows." in page


def test_render_index_missing_figure(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        render_index(tmp_path, title="t", figures=[("missing", "caption")], summary=None, parameters={}, tables={})
    assert not (tmp_path / "index.html").exists()


def test_render_index_is_deterministic(tmp_path):
    kwargs = dict(title="t", figures=[], summary=pd.DataFrame({"dataset": ["a"], "beta": [0.5]}),
                  parameters={"seed": 1}, tables={"summary": "summary.csv"})
    first = render_index(tmp_path, **kwargs).read_bytes()
    assert render_index(tmp_path, **kwargs).read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]
