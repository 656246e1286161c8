"""Saving figures and writing the report's ``index.html``.

Every file is written atomically: the bytes go to a hidden temporary file in the target
directory, which then replaces the final name with :func:`os.replace`, so an interrupted
run leaves either the old file or the new one, never half of one. Outputs are
deterministic: SVGs carry no date and fixed element ids, and the page carries no
timestamp, so the same inputs give byte-identical files.
"""
from __future__ import annotations

import html
import io
import json
import math
import os
import re
import struct
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._io import atomic_write
from .frames import COLUMN_DOCS

__all__ = ["write_figure", "render_index", "FIGURE_FORMATS"]

#: Formats every figure is saved in: PNG for the page, SVG behind the link.
FIGURE_FORMATS = ("png", "svg")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# --------------------------------------------------------------------------- files

def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name must be a plain file stem (letters, digits, '_', '-', '.', not starting with "
                         f"'.' or containing '/'); received {name!r}")
    return name


def _close(fig: Figure) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)  # only matters if the caller made it with pyplot
    fig.clear()


def _freeze_layout(fig: Figure) -> None:
    """Keep the layout the first save computed, so the next format does not lay it out again."""
    try:
        fig.set_layout_engine("none")
    except RuntimeError:  # an engine that colorbars need cannot be switched off; lay out again then
        pass


def write_figure(fig: Figure, directory: str | os.PathLike, name: str, *, dpi: int = 120) -> list[Path]:
    """Save ``fig`` as ``<directory>/<name>.png`` and ``.svg``, atomically, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. from a figure's ``draw`` (:mod:`gradlab.report.figures`).
    directory : str or PathLike
        Output directory; created if missing.
    name : str
        File stem (letters, digits, ``_ - .``; no path separators).
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    list of Path
        The written files, PNG first.

    Notes
    -----
    The SVG has no date and deterministic element ids, so identical figures give identical
    files. The figure is closed afterwards (released from pyplot if it was registered
    there, and cleared), so batch runs do not accumulate memory.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure; received {type(fig).__name__}"
                        + (" (the plot function returned None: its frame was empty, leave the figure out)"
                           if fig is None else ""))
    _check_name(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for fmt in FIGURE_FORMATS:
            buffer = io.BytesIO()
            with matplotlib.rc_context({"svg.hashsalt": f"gradlab:{name}"}):
                fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
            path = directory / f"{name}.{fmt}"
            atomic_write(path, buffer.getvalue())
            written.append(path)
            _freeze_layout(fig)
    finally:
        _close(fig)
    return written


# --------------------------------------------------------------------------- page

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1400px; margin: 0 auto; padding: 1.5rem 2rem 4rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 0.3rem; }
nav a { margin-right: 1rem; }
figure { margin: 1.5rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { margin-top: 0.4rem; max-width: 80ch; }
figcaption .files { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.92rem; margin: 0.6rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.7rem; text-align: left; vertical-align: top; }
table.summary td { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td:nth-child(-n+2) { text-align: left; }
th { background: #f4f4f4; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.8rem 1rem; overflow-x: auto; font-size: 0.88rem; }
.note { color: #555; font-size: 0.92rem; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _href(filename: str) -> str:
    from urllib.parse import quote

    return _e(quote(str(filename)))


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if the file is not a PNG."""
    with open(path, "rb") as handle:
        head = handle.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _format_number(value) -> str:
    """Numbers for the summary table: whole numbers as ints, others to 4 significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def _format_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]) and not pd.api.types.is_bool_dtype(out[column]):
            out[column] = [_format_number(v) for v in out[column].tolist()]
    return out


def _format_parameter(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, indent=2, default=str, ensure_ascii=False)
    return str(value)


def render_index(directory: str | os.PathLike, *, title: str, figures: Sequence[tuple[str, str]],
                 summary: pd.DataFrame | None, parameters: Mapping[str, object], tables: Mapping[str, str],
                 column_docs: Mapping[str, Mapping[str, str]] | None = None,
                 summary_caption: str | None = None, findings: Sequence[str] | None = None,
                 header: str | None = None) -> Path:
    """Write the report page ``<directory>/index.html`` atomically.

    A self-contained page (inline CSS, no scripts, no external resources): the figures
    (each ``<name>.png`` linked to ``<name>.svg``) with their captions, the summary table,
    the CSV files with their documented columns, and the exact parameters in ``<pre>``
    blocks. All text is HTML-escaped. The page holds no timestamp, so the same inputs give
    the same bytes.

    Parameters
    ----------
    directory : str or PathLike
        The report directory; the figures and CSVs are referenced relative to it.
    title : str
        Page title and heading.
    figures : sequence of (str, str)
        ``(name, caption)`` in page order; ``<name>.png`` must exist in ``directory``
        (written by :func:`write_figure`). Leave out figures whose plot function returned
        None.
    summary : DataFrame or None
        The summary table (one row per dataset × model state). Numbers are shown with four
        significant digits, whole numbers as integers, missing values as "–", inf as "∞".
    parameters : mapping of str to object
        What produced the report, shown verbatim: e.g. ``{"spec": <TOML text>,
        "gradlab version": "0.1.0", "seed": 0}``. Multi-line strings get their own block;
        mappings and lists are shown as JSON.
    tables : mapping of str to str
        Table name -> CSV file name (relative to ``directory``).
    column_docs : mapping of str to mapping of str to str, optional
        Table name -> {column: description}; default: a report's
        (:data:`gradlab.report.frames.COLUMN_DOCS`). A table without docs is listed without its columns.
    summary_caption : str, optional
        A sentence under the summary table.
    findings : sequence of str, optional
        Paragraphs of a "Findings" section opening the page (text computed from the
        report's numbers by the caller; escaped like everything else).
    header : str, optional
        A line under the heading (a report of several cells names them there).

    Returns
    -------
    Path
        The written ``index.html``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory {str(directory)!r} does not exist; write the figures and CSVs first")
    docs = COLUMN_DOCS if column_docs is None else column_docs
    parts: list[str] = []
    add = parts.append

    add("<!DOCTYPE html>")
    add('<html lang="en"><head><meta charset="utf-8">')
    add('<meta name="viewport" content="width=device-width, initial-scale=1">')
    add(f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>")
    add(f"<h1>{_e(title)}</h1>")
    if header:
        add(f'<p class="lead">{_e(header)}</p>')
    add('<nav>' + ('<a href="#findings">Findings</a>' if findings else '')
        + '<a href="#figures">Figures</a><a href="#summary">Summary</a><a href="#tables">Data files</a>'
        '<a href="#parameters">Parameters</a></nav>')
    if findings:
        add('<h2 id="findings">Findings</h2>')
        for paragraph in findings:
            add(f"<p>{_e(paragraph)}</p>")

    add('<h2 id="figures">Figures</h2>')
    if not figures:
        add('<p class="note">No figures.</p>')
    for entry in figures:
        name, caption = entry
        _check_name(name)
        png, svg = directory / f"{name}.png", directory / f"{name}.svg"
        if not png.is_file():
            raise FileNotFoundError(f"figures names {name!r}, but {str(png)!r} does not exist; save it with "
                                    "write_figure(fig, directory, name) or leave it out of figures")
        size = _png_size(png)
        dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
        img = f'<img src="{_href(png.name)}" alt="{_e(caption or name)}"{dims} loading="lazy">'
        add(f'<figure id="fig-{_e(name)}">')
        add(f'<a href="{_href(svg.name)}">{img}</a>' if svg.is_file() else img)
        links = [f'<a href="{_href(png.name)}">PNG</a>'] + ([f'<a href="{_href(svg.name)}">SVG</a>']
                                                           if svg.is_file() else [])
        add(f"<figcaption>{_e(caption or '')} <span class=\"files\">({_e(name)}: {' · '.join(links)})</span>"
            "</figcaption></figure>")

    add('<h2 id="summary">Summary</h2>')
    if summary is None or len(summary) == 0:
        add('<p class="note">No summary rows.</p>')
    else:
        add(_format_frame(summary).to_html(index=False, escape=True, border=0, classes="summary"))
    if summary_caption:
        add(f'<p class="note">{_e(summary_caption)}</p>')

    add('<h2 id="tables">Data files</h2>')
    if not tables:
        add('<p class="note">No data files.</p>')
    for name, filename in tables.items():
        add(f'<h3>{_e(name)}: <a href="{_href(filename)}"><code>{_e(filename)}</code></a></h3>')
        if filename.endswith(".gz"):
            add('<p class="note">gzip-compressed CSV: <code>pandas.read_csv</code> reads it as it is '
                '(<code>zcat</code> shows the text).</p>')
        columns = docs.get(name)
        if columns:
            add("<table><thead><tr><th>column</th><th>meaning</th></tr></thead><tbody>")
            for column, meaning in columns.items():
                add(f"<tr><td><code>{_e(column)}</code></td><td>{_e(meaning)}</td></tr>")
            add("</tbody></table>")

    add('<h2 id="parameters">Parameters</h2>')
    short = {k: v for k, v in parameters.items() if not (isinstance(v, str) and "\n" in v)}
    long = {k: v for k, v in parameters.items() if k not in short}
    if short:
        width = max(len(str(k)) for k in short)
        lines = [f"{str(k).ljust(width)} = {_format_parameter(v)}" for k, v in short.items()]
        add(f"<pre>{_e(chr(10).join(lines))}</pre>")
    for key, text in long.items():
        add(f"<h3>{_e(key)}</h3><pre>{_e(text.rstrip(chr(10)))}</pre>")
    if not parameters:
        add('<p class="note">No parameters recorded.</p>')
    add("</body></html>")

    path = directory / "index.html"
    atomic_write(path, ("\n".join(parts) + "\n").encode("utf-8"))
    return path
