"""The Trainer's epochs as progress lines: one per epoch, one more when early stopping ends a phase.

They go to the `names.PROGRESS_LOGGER` logger (records carry the node id as `node`), which a local run
prints on the terminal and a Kubeflow task on its stdout; nothing per batch. The full per-epoch figures
stay in the log (components/trainer.py's `_epoch_log`).
"""
from __future__ import annotations

import logging
import time

import tf_keras

from components import names


def epoch_line(title: str, epoch: int, epochs: int, logs: dict, elapsed: float) -> str:
    """`phase 1 (head) epoch  3/40  loss 0.412  eval loss 0.455  eval accuracy 0.8533   12.3 s`;
    `epoch` counts from 1, `elapsed` is seconds since the phase began; a figure Keras did not give is left out."""
    width = len(str(epochs))
    parts = [f"{title} epoch {epoch:>{width}}/{epochs}"]
    for key, name, digits in (("loss", "loss", 3), ("val_loss", "eval loss", 3), ("val_accuracy", "eval accuracy", 4)):
        if key in logs:
            parts.append(f"{name} {float(logs[key]):.{digits}f}")
    return "  ".join(parts) + f"  {elapsed:5.1f} s"


def stop_line(title: str, ran: int, epochs: int, best: int, best_accuracy: float | None) -> str:
    """The line after a phase that early stopping ended before `epochs`: which epoch's weights it kept."""
    kept = f"epoch {best}" + ("" if best_accuracy is None else f" (eval accuracy {best_accuracy:.4f})")
    return f"{title} stopped early after {ran}/{epochs} epochs (eval loss no better); kept {kept}"


class EpochProgress(tf_keras.callbacks.Callback):
    """Logs `epoch_line` after each epoch of a fit and `stop_line` when it ends early, for node `node`.

    `best` follows EarlyStopping(monitor="val_loss", restore_best_weights=True): the first lowest eval loss.
    """

    def __init__(self, title: str, epochs: int, node: str = names.TRAINER,
                 logger: logging.Logger | None = None):
        super().__init__()
        self.title, self.epochs, self.node = title, epochs, node
        self.logger = logger or logging.getLogger(names.PROGRESS_LOGGER)
        self.started = 0.0
        self.ran = 0
        self.best: tuple[float, int, float | None] | None = None  # (eval loss, epoch, eval accuracy)

    def _log(self, line: str) -> None:
        self.logger.info("%s", line, extra={"node": self.node})

    def on_train_begin(self, logs=None):
        self.started, self.ran, self.best = time.monotonic(), 0, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.ran = epoch + 1
        if "val_loss" in logs and (self.best is None or float(logs["val_loss"]) < self.best[0]):
            accuracy = float(logs["val_accuracy"]) if "val_accuracy" in logs else None
            self.best = (float(logs["val_loss"]), epoch + 1, accuracy)
        self._log(epoch_line(self.title, epoch + 1, self.epochs, logs, time.monotonic() - self.started))

    def on_train_end(self, logs=None):
        if self.ran < self.epochs and self.best is not None:
            self._log(stop_line(self.title, self.ran, self.epochs, self.best[1], self.best[2]))
