"""The Evaluator's accuracy metric: Keras' SparseCategoricalAccuracy, run without autograph.

TFMA calls a Keras metric's update_state eagerly, and Keras then autograph-converts update_state and the
metric function the first time (~4 s of a small run's Evaluator, for code with no tensor-dependent Python
control flow). Under do_not_convert nothing is converted; the name, the values and the MLMD keys are Keras'.
"""
import tensorflow as tf
import tf_keras


class SparseCategoricalAccuracy(tf_keras.metrics.SparseCategoricalAccuracy):
    @tf.autograph.experimental.do_not_convert
    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)
