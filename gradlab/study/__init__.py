"""The study layer: specs, plans and the one resumable runner of reports, training studies and suites.

- :mod:`~gradlab.study.spec`: the TOML specs (one base; report, training study and suite kinds).
- :mod:`~gradlab.study.plan`: checks and estimates before any work; unit keys; the output folder's lock.
- :mod:`~gradlab.study.runner`: plan -> lock -> executor map over units -> atomic writes -> done
  markers -> combine -> manifest -> render.
- :mod:`~gradlab.study.report`, :mod:`~gradlab.study.training`, :mod:`~gradlab.study.suite`: what a
  unit is and computes for each kind.
- :mod:`~gradlab.study.states`: model states materialised, training included.

Importing this package compiles nothing and reads no files.
"""
