"""The Trainer's epoch lines (components/epoch_progress.py): their format, one per epoch on a tiny tf_keras fit,
and where a local run (pipelines/run_log.py) and a Kubeflow task (pipelines/kubeflow_entrypoint.py) send them."""
import io
import logging
import re

import pytest

from components import names


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)

    @property
    def messages(self):
        return [r.getMessage() for r in self.records]


@pytest.fixture
def lines():
    logger = logging.getLogger("test.epoch_progress")
    handler = Lines()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def test_epoch_line_and_stop_line():
    from components.epoch_progress import epoch_line, stop_line

    logs = {"loss": 0.41234, "accuracy": 0.9, "val_loss": 0.45509, "val_accuracy": 0.85333}
    assert epoch_line("phase 1 (head)", 3, 40, logs, 12.34) == (
        "phase 1 (head) epoch  3/40  loss 0.412  eval loss 0.455  eval accuracy 0.8533   12.3 s")
    assert epoch_line("phase 2 (fine-tune)", 1, 6, {"loss": 1.0}, 0.5) == (
        "phase 2 (fine-tune) epoch 1/6  loss 1.000    0.5 s")
    assert stop_line("phase 1 (head)", 12, 40, 8, 0.8512) == (
        "phase 1 (head) stopped early after 12/40 epochs (eval loss no better); kept epoch 8 (eval accuracy 0.8512)")


def test_one_line_per_epoch_of_a_tiny_fit_and_none_per_batch(lines):
    import numpy as np
    import tf_keras

    from components.epoch_progress import EpochProgress

    logger, handler = lines
    tf_keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = tf_keras.Sequential([tf_keras.layers.Dense(2, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    model.fit(x, y, batch_size=4, validation_data=(x[:4], y[:4]), epochs=3, verbose=0,
              callbacks=[EpochProgress("phase 1 (head)", 3, logger=logger)])
    assert len(handler.messages) == 3  # 3 batches an epoch, 3 epochs, no early stop
    for n, message in enumerate(handler.messages, 1):
        assert re.fullmatch(rf"phase 1 \(head\) epoch {n}/3  loss \d\.\d{{3}}  eval loss \d\.\d{{3}}  "
                            rf"eval accuracy \d\.\d{{4}} +\d+\.\d s", message), message
    assert {r.node for r in handler.records} == {names.TRAINER}


def test_a_phase_stopped_early_says_which_epoch_it_kept(lines):
    from components.epoch_progress import EpochProgress

    logger, handler = lines
    progress = EpochProgress("phase 2 (fine-tune)", 6, logger=logger)
    progress.on_train_begin()
    for epoch, (loss, accuracy) in enumerate([(0.5, 0.80), (0.4, 0.84), (0.4, 0.86), (0.45, 0.83)]):
        progress.on_epoch_end(epoch, {"loss": 0.3, "val_loss": loss, "val_accuracy": accuracy})
    progress.on_train_end()
    assert len(handler.messages) == 5
    assert handler.messages[-1] == ("phase 2 (fine-tune) stopped early after 4/6 epochs (eval loss no better); "
                                    "kept epoch 2 (eval accuracy 0.8400)")


def test_a_local_run_prints_them_on_the_terminal_and_not_in_the_log(tmp_path, capfd):
    from pipelines import run_log

    progress = logging.getLogger(names.PROGRESS_LOGGER)
    with run_log.captured(str(tmp_path), verbose=False) as log:
        progress.info("%s", "phase 1 (head) epoch 1/2", extra={"node": names.TRAINER})
    err = capfd.readouterr().err
    assert f"[transferline] {names.TRAINER:<22} phase 1 (head) epoch 1/2\n" in err
    with open(log.path, encoding="utf-8") as f:
        assert "epoch 1/2" not in f.read()
    with run_log.captured(str(tmp_path), verbose=True):
        progress.info("%s", "phase 1 (head) epoch 2/2", extra={"node": names.TRAINER})
    assert capfd.readouterr().err.count("epoch 2/2") == 1
    progress.info("%s", "after the run", extra={"node": names.TRAINER})  # unconfigured again: dropped
    assert "after the run" not in "".join(capfd.readouterr())


def test_a_kubeflow_task_prints_them_on_stdout():
    from pipelines.kubeflow_entrypoint import progress_to_stdout

    logger = logging.getLogger(names.PROGRESS_LOGGER)
    saved = logger.handlers[:], logger.level, logger.propagate
    out = io.StringIO()
    try:
        progress_to_stdout(out)
        logger.info("%s", "phase 1 (head) epoch 1/2", extra={"node": names.TRAINER})
    finally:
        logger.handlers[:], (logger.level, logger.propagate) = saved[0], saved[1:]
    assert out.getvalue() == f"[transferline] {names.TRAINER:<22} phase 1 (head) epoch 1/2\n"
