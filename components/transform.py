"""The Transform step: text -> sentence embedding (the encoder) and TF-IDF n-grams; label -> index.

Runs in tf.Transform, so the very same graph (encoder, n-gram vocabulary and IDF weights included) is
exported and applied at serving time: nothing differs between training and serving. The raw text passes
through too, for the Trainer's fine_tune mode (the encoder inside the model, components/model.py).
Each extra is made only when a mode that reads it can be trained (components/modes.py transform_features):
the n-grams' vocabulary and document frequencies are two more passes over the data, and both extras are
written for every row.
"""
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_transform as tft

from components import names
from components.modes import TRANSFORM_RAW_TEXT, TRANSFORM_WIDE

_ENCODERS = {}  # handle -> the loaded encoder, for this process


def _load_once(handle: str):
    """tf.Transform traces preprocessing_fn ~10 times a run, each asking for the encoder: loading it each
    time was ~4 s of a small run's Transform. The object is immutable (frozen weights), so one serves all."""
    if handle not in _ENCODERS:
        _ENCODERS[handle] = hub.load(handle)
    return _ENCODERS[handle]


def ngram_tfidf(text: tf.Tensor, ngram_max: int, vocab_size: int):
    """Word 1..ngram_max-grams of lower-cased text (punctuation split off as tokens), as TF-IDF.

    Returns (ids, weights): SparseTensors [batch, None] over a vocabulary of the `vocab_size` most frequent
    n-grams of the training data plus one bucket for the rest.
    """
    spaced = tf.strings.regex_replace(tf.strings.lower(text), r"([^\w\s'])", r" \1 ")
    tokens = tf.strings.split(spaced).to_sparse()
    grams = tft.ngrams(tokens, (1, ngram_max), separator=" ")
    ids = tft.compute_and_apply_vocabulary(grams, top_k=vocab_size, num_oov_buckets=1,
                                           vocab_filename=names.NGRAM_VOCAB)
    return tft.tfidf(ids, vocab_size + 1)


def preprocessing_fn(inputs, custom_config):
    """TFX Transform entry point (passed to Transform as a dotted path).

    custom_config["encoder_handle"]: a resolved encoder handle (SavedModel dir or TF-Hub URL).
    custom_config["label_names"]: every class of the curated schema's label domain.
    custom_config["ngram_max"], ["ngram_vocab_size"]: the wide features (pipelines/config.py [transform]).
    custom_config["wide_features"], ["raw_text"]: whether to make the wide features, the raw text (default:
    both; components/modes.py transform_features).
    """
    import tensorflow_text  # noqa: F401  (registers SentencePiece ops in every Beam worker)

    handle = custom_config["encoder_handle"]
    encoder = tft.make_and_track_object(lambda: _load_once(handle), name="encoder")
    text = tf.reshape(inputs[names.TEXT], [-1])
    label = tf.reshape(inputs[names.LABEL], [-1])
    # Every class of the contract is in the vocabulary, even one this run's spans lack (a small or
    # windowed span may miss a rare class): the head always has one output per class.
    classes = tf.constant(custom_config["label_names"])
    vocabulary = tft.vocabulary(tf.concat([label, classes], axis=0), vocab_filename=names.LABEL_VOCAB)
    # At serving time requests carry no label: the exported graph prunes LABEL_ID then.
    out = {names.EMBEDDING: encoder(text), names.LABEL_ID: tft.apply_vocabulary(label, vocabulary)}
    if custom_config.get(TRANSFORM_WIDE, True):
        out[names.NGRAM_IDS], out[names.NGRAM_WEIGHTS] = ngram_tfidf(text, custom_config["ngram_max"],
                                                                     custom_config["ngram_vocab_size"])
    if custom_config.get(TRANSFORM_RAW_TEXT, True):
        out[names.RAW_TEXT] = text
    return out
