"""References: the simple reference models a first model must beat, measured in the run on the run's own data.

A fixed accuracy bound says nothing about a new dataset (0.8 is poor on TREC and out of reach on harder
data). So the run measures two references on the same gate data the Evaluator uses (the newest span's
eval split, plus the held-out test split where there is one), trained on the same training split:

    majority   always the most frequent training label
    tfidf_lr   TF-IDF (word 1-2-grams) + logistic regression (scikit-learn)

Both accuracies go on the output artifact as MLMD custom properties (and references.json beside it);
PushGate (components/push_gate.py) holds back a first model that does not beat them.
"""
import collections
import json
import os

from tfx import v1 as tfx
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_artifacts

from components.names import MAJORITY_ACCURACY, REFERENCE_EXAMPLES, TFIDF_ACCURACY, TRAIN_SPLIT, gate_splits
from components.spans import split_rows



def tfidf_lr(seed: int = 0):
    """The TF-IDF reference model: word uni- and bigrams, sublinear tf, logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                         LogisticRegression(max_iter=1000, random_state=seed))


def reference_accuracies(train: list[tuple[str, str]], gate: list[tuple[str, str]], seed: int = 0) -> dict:
    """{MAJORITY_ACCURACY, TFIDF_ACCURACY, REFERENCE_EXAMPLES} for (text, label) rows."""
    texts, labels = zip(*train)
    gate_texts, gate_labels = zip(*gate)
    majority = collections.Counter(labels).most_common(1)[0][0]
    predicted = tfidf_lr(seed).fit(list(texts), list(labels)).predict(list(gate_texts))
    return {MAJORITY_ACCURACY: sum(y == majority for y in gate_labels) / len(gate_labels),
            TFIDF_ACCURACY: sum(p == y for p, y in zip(predicted, gate_labels)) / len(gate_labels),
            REFERENCE_EXAMPLES: len(gate_labels)}


@component
def References(
        examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
        references: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelEvaluation],
        seed: tfx.dsl.components.Parameter[int]):
    """Fits both references on the train split and scores them on the gate splits (eval + test)."""
    splits = artifact_utils.decode_split_names(examples.split_names)
    gate = [row for split in gate_splits() if split in splits for row in split_rows(examples, split)]
    result = reference_accuracies(split_rows(examples, TRAIN_SPLIT), gate, seed)
    references.set_float_custom_property(MAJORITY_ACCURACY, result[MAJORITY_ACCURACY])
    references.set_float_custom_property(TFIDF_ACCURACY, result[TFIDF_ACCURACY])
    references.set_int_custom_property(REFERENCE_EXAMPLES, result[REFERENCE_EXAMPLES])
    fileio.makedirs(references.uri)  # the KFP launcher does not make output folders (the local runner does)
    with fileio.open(os.path.join(references.uri, "references.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
