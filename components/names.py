"""Every name more than one module spells, in one place. Plain strings: no TensorFlow, no TFX.

Features and signatures are the model's contract with its callers; component ids, output keys and
custom-property names are the contract between the pipeline and whatever reads MLMD (the run summary,
the report, the Kubeflow IR); the serving-directory names are the contract with TF Serving and rollback.
Paths under the work dir are built by pipelines/work_dir.py (WorkDir), not here.

Words with one meaning each, in code, messages and docs:
  data contract   the schema plus contract.* knobs; DataGate enforces it and halts the run (exit 3).
  push gate       the Evaluator's thresholds (gate.* knobs) plus PushGate, which decide whether to push.
  gate data       what the push gate judges on: the eval split plus the held-out test set (gate_splits()).
  baseline        only ever the served model a candidate is compared with (ServedModelBaseline).
  references      the simple reference models (majority class, TF-IDF + LR) a first model must beat.
"""
import os

# ----------------------------------------------------------------------------------------- features
TEXT = "text"            # raw: the text to classify (CSV column)
LABEL = "label"          # raw: the class name (CSV column)
EMBEDDING = "embedding"  # transformed: the encoder's sentence embedding, float32[512]
LABEL_ID = "label_id"    # transformed: index of LABEL in the label vocabulary
LABEL_VOCAB = "label"    # name of the label vocabulary file in the transform graph
NGRAM_IDS = "ngram_ids"          # transformed: word n-gram ids (sparse), the wide path's input
NGRAM_WEIGHTS = "ngram_weights"  # transformed: their TF-IDF weights (sparse, aligned with NGRAM_IDS)
NGRAM_VOCAB = "ngrams"           # name of the n-gram vocabulary file in the transform graph
RAW_TEXT = "raw_text"            # transformed: the text itself, for the Trainer's fine_tune mode
COLUMNS = (TEXT, LABEL)  # the CSV contract, in order

# Outputs of the served model's signatures.
PROBABILITIES = "probabilities"  # float32[batch, n_classes]
CLASSES = "classes"              # string[batch, n_classes]: class names, aligned with PROBABILITIES
TOP_CLASS = "label"              # string[batch]: most probable class
TOP_SCORE = "score"              # float32[batch]: its probability

# ----------------------------------------------------------------------------------------- signatures
SERVING_DEFAULT = "serving_default"        # raw text in (TF Serving REST `instances`)
SERVING_EXAMPLES = "serving_examples"      # serialized tf.Examples in (TFMA, gRPC clients)
TRANSFORM_FEATURES = "transform_features"  # the transform graph alone, for TFMA
EXAMPLES_INPUT = "examples"                # the input name of the two tf.Example signatures

# ----------------------------------------------------------------------------------------- components
# Node ids: what MLMD records and the Kubeflow IR names its tasks.
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
DATA_GATE = "DataGate"
TRANSFORM = "Transform"
SERVED_MODEL = "ServedModel"
TRAINER = "Trainer"
BASELINE = "ServedModelBaseline"
REFERENCES = "References"  # the simple reference models the first model must beat (components/references.py)
EVALUATOR = "Evaluator"
PUSH_GATE = "PushGate"
# The servability gate: components/servability.py's ServabilityCheck, in the role (and with the output) of TFX's.
INFRA_VALIDATOR = "InfraValidator"
PUSHER = "Pusher"
COMPONENTS = (EXAMPLE_GEN, STATISTICS_GEN, SCHEMA_GEN, EXAMPLE_VALIDATOR, DATA_GATE, TRANSFORM, SERVED_MODEL,
              TRAINER, BASELINE, REFERENCES, EVALUATOR, INFRA_VALIDATOR, PUSH_GATE, PUSHER)


def output_key(component: str, key: str) -> str:
    """How the run summary keys an output artifact: "Component.key"."""
    return f"{component}.{key}"


EXAMPLES = output_key(EXAMPLE_GEN, "examples")
STATISTICS = output_key(STATISTICS_GEN, "statistics")
SCHEMA = output_key(SCHEMA_GEN, "schema")
ANOMALIES = output_key(EXAMPLE_VALIDATOR, "anomalies")
TRANSFORM_GRAPH = output_key(TRANSFORM, "transform_graph")
TRANSFORMED_EXAMPLES = output_key(TRANSFORM, "transformed_examples")
SERVED_MODEL_OUT = output_key(SERVED_MODEL, "model")
MODEL = output_key(TRAINER, "model")
MODEL_RUN = output_key(TRAINER, "model_run")
BASELINE_OUT = output_key(BASELINE, "baseline")
REFERENCES_OUT = output_key(REFERENCES, "references")
EVALUATION = output_key(EVALUATOR, "evaluation")
BLESSING = output_key(EVALUATOR, "blessing")
GATE = output_key(PUSH_GATE, "gate")
INFRA_BLESSING = output_key(INFRA_VALIDATOR, "blessing")  # the model with its warmup file, when servable
PUSHED_MODEL = output_key(PUSHER, "pushed_model")
GATE_ROWS = output_key(DATA_GATE, "gate_rows")      # rows of gate data (Integer value artifacts)
LEAKED_ROWS = output_key(DATA_GATE, "leaked_rows")  # of those, rows whose text is also a training text
EVAL_ROWS = output_key(DATA_GATE, "eval_rows")      # of those, the eval split's (early stopping, phase 2)

# The Examples artifact's splits: the chosen spans hash into train and eval; the held-out test set is its own.
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
TEST_SPLIT = "test"


def gate_splits(has_test_set: bool = True) -> list[str]:
    """What the push gate judges on (the Evaluator, the References, the leakage count, monitor's baseline):
    the eval split, plus the held-out test set where there is one."""
    return [EVAL_SPLIT, TEST_SPLIT] if has_test_set else [EVAL_SPLIT]


ACCURACY_METRIC = "sparse_categorical_accuracy"  # TFMA's name of the gated metric
EXAMPLE_COUNT_METRIC = "example_count"

# ----------------------------------------------------------------------------------------- MLMD properties
SPANS = "spans"                        # Examples: the chosen span numbers, comma-separated
SKIPPED_SPANS = "skipped_spans"        # Examples: span folders with no data file yet, comma-separated
EVAL_SPANS = "eval_spans"              # Examples: the spans the eval split was drawn from (data.min_eval_rows)
MIN_EVAL_ROWS = "min_eval_rows"        # Examples: data.min_eval_rows, the eval split's floor it was drawn for
DATA_FINGERPRINT = "data_fingerprint"  # Examples: TFX's fingerprint of the files read
BASELINE_SOURCE = "baseline_source"    # "served", "first_model", "classes_changed" (baseline) or "none" (nothing served)
CLASS_CHANGE = "class_change"          # ServedModelBaseline, PushGate: how the classes differ from the served model's
BASELINE_VERSION = "baseline_version"  # the served version number, 0 for first_model
BASELINE_PATH = "baseline_path"        # what was copied
BLESSED = "blessed"                    # ModelBlessing (TFX's own name)
REASON = "reason"                      # PushGate: why the model did or did not go through
SERVED_VERSION = "served_version"      # PushGate: the version served when it decided
TRAINING_FINGERPRINT = "training_fingerprint"  # the data (spans, test set) and the training config
# References and PushGate: accuracy on the gate data of the simple references, and of the candidate.
MAJORITY_ACCURACY = "majority_accuracy"  # always the most frequent training label
TFIDF_ACCURACY = "tfidf_lr_accuracy"     # TF-IDF (1-2-grams) + logistic regression
REFERENCE_EXAMPLES = "reference_examples"  # how many gate examples they were measured on
CANDIDATE_ACCURACY = "candidate_accuracy"  # PushGate: the candidate's accuracy, from the Evaluator (TFMA)
EVALUATION_URI = "evaluation_uri"  # PushGate: the Evaluator's output, for the model card the Pusher writes
REFERENCE_MARGIN = "reference_margin"      # PushGate: by how much the first model had to beat them
REFERENCE_NAMES = {MAJORITY_ACCURACY: "majority class", TFIDF_ACCURACY: "TF-IDF(1-2-grams)+LR"}
# InfraBlessing (also "blessed", and REASON when refused, in words): the warmup file it wrote.
WARMUP_RECORDS = "warmup_records"        # how many PredictionLog records
WARMUP_SIGNATURES = "warmup_signatures"  # for which signatures, comma-separated
PUSHED = "pushed"                      # Pusher (TFX's own names)
PUSHED_DESTINATION = "pushed_destination"
PUSHED_VERSION = "pushed_version"
ALREADY_PRESENT = "already_present"    # Pusher: 1 = the model was found already under the serving dir
PUSHED_AS = "pushed_as"                # Pusher: "stable" (served at once) or "canary" (rollout.mode = canary)
REPLACED_CANARY = "replaced_canary"    # Pusher: the canary still on trial that this push set aside (0: none)
INTERRUPTED = "interrupted"            # an execution whose process died while it ran (pipelines/runs.py)

# ----------------------------------------------------------------------------------------- the push gate
class GateReason:
    """PushGate's verdicts, as recorded in MLMD; EXPLAINED says each in words (summary, report)."""
    OK = "ok"
    NOT_BLESSED = "not_blessed"
    STALE = "stale_baseline"
    ALREADY_SERVED = "already_served"
    SAME_TRAINING = "same_training"
    ROLLED_BACK = "rolled_back"
    BELOW_REFERENCE = "below_reference"
    OK_CLASSES_CHANGED = "ok_classes_changed"
    EXPLAINED = {
        OK: "pushed: blessed against the model served now",
        OK_CLASSES_CHANGED: "pushed: the classes changed, so it was not compared with the served model; it beat "
                            "the references on the same gate data instead",
        NOT_BLESSED: "the Evaluator did not bless the model",
        STALE: "the served model changed since this candidate was compared with it",
        ALREADY_SERVED: "this very model is already the served one",
        SAME_TRAINING: "the served model was trained on the same data with the same config",
        ROLLED_BACK: "a model trained like this was rolled back (new data or config lifts it)",
        BELOW_REFERENCE: "a first model (or one whose classes changed) must beat the references measured on the "
                         "same gate data (gate.reference_margin)",
    }


# ----------------------------------------------------------------------------------------- progress
# The logger a step sends its progress lines to (the Trainer's epochs; components/epoch_progress.py), each
# record with the node id as `node`: a local run prints them on the terminal (pipelines/run_log.py), a
# Kubeflow task on its stdout (pipelines/kubeflow_entrypoint.py). Left unconfigured, nothing shows them.
PROGRESS_LOGGER = "transferline.progress"

# ----------------------------------------------------------------------------------------- the Trainer's model_run
WARM_START_FILE = "warm_start.json"   # what the warm start did, in words
INITIAL_HEAD_FILE = "initial_head.npz"  # the head's weights before training
TRAINING_FILE = "training.json"   # the mode (and why auto picked it), each phase's eval figures
# In the exported model (TF Serving ignores assets.extra/): its mode and encoder handle, for the next warm start.
MODEL_INFO = os.path.join("assets.extra", "model.json")
# Also in it: the Trainer's training.json (mode, phases with their per-epoch history, knobs, warm start), for
# the model card the Pusher writes into each pushed version (components/model_card.py), as JSON and HTML.
MODEL_TRAINING = os.path.join("assets.extra", "training.json")
MODEL_CARD = os.path.join("assets.extra", "model_card.json")
MODEL_CARD_HTML = os.path.join("assets.extra", "model_card.html")

# ----------------------------------------------------------------------------------------- the serving directory
# TF Serving serves <serving_dir>/<highest number>/ and ignores folders whose name is not a number.
STAGING_PREFIX = ".staging-"       # a push in progress: <serving_dir>/.staging-<version>/
ROLLED_BACK_DIR = ".rolled-back"   # versions moved aside by a rollback: <serving_dir>/.rolled-back/<v>-<time>/
PROVENANCE = os.path.join("assets.extra", "transferline.json")  # in each pushed version; TF Serving ignores it
# rollout.mode = canary: TF Serving's ModelServerConfig for the serving dir (--model_config_file), kept by the
# Pusher, `promote` and `rollback`: the versions served and their labels (components/rollout.py).
ROLLOUT_CONFIG = "models.config"
STABLE_LABEL, CANARY_LABEL = "stable", "canary"

# ----------------------------------------------------------------------------------------- the data dir
# A span folder, data_dir/span-N/, holds CSV files and, once a drift was accepted, this record (not a CSV:
# no run reads it as data, and TFX's input fingerprint ignores it).
ACCEPTED_FILE = ".accepted.json"
REMOVED_SPANS_DIR = ".removed"  # `remove-span` moves span-N/ to data_dir/.removed/span-N-<time>/ (never deleted)

# ----------------------------------------------------------------------------------------- a project (init)
PROJECT_FILE = "transferline.toml"  # what `transferline init` writes; commands find it in the current directory
