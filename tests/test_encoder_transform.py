"""The encoder inside tf.Transform (TF2 tracing, DirectRunner), and in the exported transform graph."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import TEST_CSV, TRAIN_CSV, read_rows

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines


def make_preprocessing_fn(handle):
    import tensorflow_hub as hub
    import tensorflow_transform as tft

    def preprocessing_fn(inputs):
        import tensorflow_text  # noqa: F401  (SentencePiece ops, in every Beam worker)

        encoder = tft.make_and_track_object(lambda: hub.load(handle), name="encoder")
        return {"embedding": encoder(tf.reshape(inputs["text"], [-1]))}

    return preprocessing_fn


@pytest.fixture(scope="module")
def transformed(tmp_path_factory, encoder_dir):
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    texts = [r["text"] for r in read_rows(TRAIN_CSV)[:40]] + ["", "東京はどこですか", "🍕 pizza"]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
        {"text": tf.io.FixedLenFeature([], tf.string)}))
    tmp = tmp_path_factory.mktemp("tft")
    with tft_beam.Context(temp_dir=str(tmp / "tmp"), force_tf_compat_v1=False):
        (data, _), transform_fn = (
            [{"text": t} for t in texts], metadata) | tft_beam.AnalyzeAndTransformDataset(
                make_preprocessing_fn(encoder_dir), output_record_batches=False)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp / "transform_fn"))
    return texts, np.stack([d["embedding"] for d in data]), str(tmp / "transform_fn")


def test_transform_output_equals_direct_encoder(transformed, hub_encoder):
    texts, embeddings, _ = transformed
    assert embeddings.shape == (len(texts), 512)
    direct = hub_encoder(tf.constant(texts)).numpy()
    assert np.abs(embeddings - direct).max() <= 1e-5


def test_exported_transform_graph_reproduces_embeddings_on_new_text(transformed, hub_encoder):
    import tensorflow_text  # noqa: F401
    import tensorflow_transform as tft

    _, _, transform_dir = transformed
    new = [r["text"] for r in read_rows(TEST_CSV)[:25]] + ["Ποια είναι η πρωτεύουσα της Ελλάδας;"]
    layer = tft.TFTransformOutput(transform_dir).transform_features_layer()
    out = layer({"text": tf.constant(new)})["embedding"].numpy()
    assert np.abs(out - hub_encoder(tf.constant(new)).numpy()).max() <= 1e-5
