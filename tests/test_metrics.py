"""components.metrics: the Evaluator's accuracy is Keras' own, under the same name, without autograph."""
import numpy as np


def test_accuracy_equals_keras_and_keeps_its_name():
    import tf_keras

    from components.metrics import SparseCategoricalAccuracy

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 6, size=(50, 1))
    y_pred = rng.random((50, 6)).astype("float32")
    weights = rng.random(50).astype("float32")
    ours, keras = SparseCategoricalAccuracy(), tf_keras.metrics.SparseCategoricalAccuracy()
    for metric in (ours, keras):
        metric.update_state(y_true[:20], y_pred[:20])
        metric.update_state(y_true[20:], y_pred[20:], sample_weight=weights[20:])
    assert ours.name == keras.name == "sparse_categorical_accuracy"  # the MLMD / gate key
    assert float(ours.result()) == float(keras.result()) > 0


def test_update_state_is_not_autograph_converted(monkeypatch):
    import tf_keras
    from tensorflow.python.autograph.impl import api

    from components.metrics import SparseCategoricalAccuracy

    converted = []
    real = api._convert_actual
    monkeypatch.setattr(api, "_convert_actual", lambda entity, program_ctx: converted.append(entity) or
                        real(entity, program_ctx))
    y_true, y_pred = np.array([[1], [0]]), np.array([[0.2, 0.8], [0.6, 0.4]], dtype="float32")
    SparseCategoricalAccuracy().update_state(y_true, y_pred)
    assert converted == []
    tf_keras.metrics.SparseTopKCategoricalAccuracy(k=1).update_state(y_true, y_pred)  # the control: Keras'
    assert converted  # own metric is converted on its first call
