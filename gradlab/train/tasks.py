"""Tasks a model can be trained on, and the tasks a model trained on each can be evaluated on (the same
output layer). Training studies and the reports' "train:" model states share this one table."""
from __future__ import annotations

#: Trained task -> evaluation tasks it allows (its first entry is itself).
TRAIN_TASKS = {"lm": ("lm", "agreement", "recall", "closing"), "number": ("number",), "recall": ("recall", "lm"),
               "closing": ("closing", "lm")}
