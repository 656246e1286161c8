"""Figures and HTML pages of gradlab's output folders (reports, training studies, study suites).

- :mod:`.frames`: every table, declared once (name, columns and their docs, compressed or not, which outputs
  write it), and reading a folder's tables back;
- :mod:`.figures`: one module per figure (``NAME``, ``CAPTION``, ``FRAMES``, ``draw``) and the ordered
  figure lists of each kind of output; :mod:`.style`: what the figures share;
- :mod:`.findings`: a suite's findings, computed from its tables;
- :mod:`.html`: saving figures and writing ``index.html``; :mod:`.render`: the one renderer of a folder.

Nothing here runs analyses or training: the study layer writes the tables and calls :func:`.render.render`.
"""
from __future__ import annotations
