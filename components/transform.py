"""The Transform step: text -> sentence embedding (the encoder), label -> index.

Runs in tf.Transform, so the very same graph (encoder included) is exported and
applied at serving time: nothing differs between training and serving.
"""
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_transform as tft

from components import names


def preprocessing_fn(inputs, custom_config):
    """TFX Transform entry point (passed to Transform as a dotted path).

    custom_config["encoder_handle"]: a resolved encoder handle (SavedModel dir or TF-Hub URL).
    custom_config["label_names"]: every class of the curated schema's label domain.
    """
    import tensorflow_text  # noqa: F401  (registers SentencePiece ops in every Beam worker)

    handle = custom_config["encoder_handle"]
    encoder = tft.make_and_track_object(lambda: hub.load(handle), name="encoder")
    text = tf.reshape(inputs[names.TEXT], [-1])
    label = tf.reshape(inputs[names.LABEL], [-1])
    # Every class of the contract is in the vocabulary, even one this run's spans lack (a small or
    # windowed span may miss a rare class): the head always has one output per class.
    classes = tf.constant(custom_config["label_names"])
    vocabulary = tft.vocabulary(tf.concat([label, classes], axis=0), vocab_filename=names.LABEL_VOCAB)
    # At serving time requests carry no label: the exported graph prunes LABEL_ID then.
    return {
        names.EMBEDDING: encoder(text),
        names.LABEL_ID: tft.apply_vocabulary(label, vocabulary),
    }
