"""The push gate's rules as a pure decision table (no TFX): components/push_gate.py applies them."""
import hashlib

from components.names import GateReason


def below_references(accuracy: float, references: dict[str, float], margin: float) -> list[str]:
    """The references (MLMD names) the accuracy does not beat by ``margin``. Ties within 1e-6 count as equal:
    MLMD's SQLite store keeps about 6 significant digits of a double custom property."""
    return [name for name, value in sorted(references.items()) if accuracy < value + margin - 1e-6]


def decide(*, blessed: bool, served_now: int, compared_with: int, candidate: bytes, served: bytes,
           served_training: str | None, training: str, rolled_back_trainings: set,
           accuracy: float = 1.0, references: dict[str, float] | None = None, margin: float = 0.0,
           comparable: bool = True) -> str:
    """The gate's decision table, first match wins; returns a GateReason.

    A compare-and-swap at the push boundary: if the version served now is not the one the candidate was
    compared with (a cached comparison, another pipeline pushed, a rollback), the model is held back
    (STALE). A first model (compared with nothing served) whose ``accuracy`` does not beat each of the
    ``references`` by ``margin`` is refused (BELOW_REFERENCE; ``references`` None or empty: not checked;
    later models answer to the no-regression bound instead; so does a candidate not ``comparable`` with the
    served model because its classes changed: pushed as OK_CLASSES_CHANGED). Also held back: a model that is already the served one (ALREADY_SERVED); one trained on the
    very data and config of the served model (SAME_TRAINING: a scheduled run that found no new data, on
    Kubeflow where nothing is cached); one trained like a version that was rolled back (ROLLED_BACK: a
    rollback sticks until the data or the config change).
    """
    if not blessed:
        return GateReason.NOT_BLESSED
    if served_now != compared_with:
        return GateReason.STALE
    if (not compared_with or not comparable) and references and below_references(accuracy, references, margin):
        return GateReason.BELOW_REFERENCE
    if candidate and candidate == served:
        return GateReason.ALREADY_SERVED
    if served_now and served_training == training:
        return GateReason.SAME_TRAINING
    if training in rolled_back_trainings:
        return GateReason.ROLLED_BACK
    return GateReason.OK if comparable else GateReason.OK_CLASSES_CHANGED


def training_fingerprint(data_fingerprint: str, config_fingerprint: str) -> str:
    """What decided the model besides the code: the data read and the training config."""
    return hashlib.sha256(f"{data_fingerprint}/{config_fingerprint}".encode()).hexdigest()[:16]
