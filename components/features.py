"""Feature names, in one place (raw CSV columns and transformed features)."""

TEXT = "text"            # raw: the text to classify (CSV column)
LABEL = "label"          # raw: the class name (CSV column)
EMBEDDING = "embedding"  # transformed: the encoder's sentence embedding, float32[512]
LABEL_ID = "label_id"    # transformed: index of LABEL in the label vocabulary
LABEL_VOCAB = "label"    # name of the label vocabulary file in the transform graph

# Outputs of the served model's signatures.
PROBABILITIES = "probabilities"  # float32[batch, n_classes]
CLASSES = "classes"              # string[batch, n_classes]: class names, aligned with PROBABILITIES
TOP_CLASS = "label"              # string[batch]: most probable class
TOP_SCORE = "score"              # float32[batch]: its probability
