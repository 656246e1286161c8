"""Training and evaluation on the engine: SGD under any truncation scheme, checkpoints, metrics.

>>> from gradlab.train import Trainer, evaluate                       # doctest: +SKIP
>>> result = Trainer(scheme="tbptt:3", learning_rate=0.5, epochs=10).fit(model, train, dev)  # doctest: +SKIP
>>> evaluate(result.model, dev, "agreement").by_distance             # doctest: +SKIP

Importing this package compiles nothing and reads no files.
"""
from .evaluate import Evaluation, evaluate
from .trainer import (CheckpointError, DivergenceError, Trainer, TrainingProgress, TrainResult, learning_rate_at,
                      train)

__all__ = ["Trainer", "TrainResult", "TrainingProgress", "train", "learning_rate_at", "DivergenceError",
           "CheckpointError", "Evaluation", "evaluate"]
