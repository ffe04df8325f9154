"""The warmup file TF Serving replays when it loads a version: written by ServabilityCheck, replayed by it
and by `serve` (ops/serving/loaded_model.py), as TF Serving 2.16.1 does.

`<version>/assets.extra/tf_serving_warmup_requests` is a TFRecord of `PredictionLog` protos
(servables/tensorflow/saved_model_warmup_util.cc:78-80 = WU). At load each record is run once
(WU:119-121, num_request_iterations defaults to 1: WU:86-92) and the first error fails the load, so the
version never becomes AVAILABLE (WU:120, 232; saved_model_warmup.cc:55-59). No file: the load goes on (WU:81-85).
"""
from __future__ import annotations

import os
import time

from components.names import EXAMPLES_INPUT, EVAL_SPLIT, SERVING_DEFAULT, SERVING_EXAMPLES, TEXT

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")  # WarmupConsts::kRequestsFileName
MAX_RECORDS = 1000  # WarmupConsts::kMaxNumRecords (saved_model_warmup_util.h:30): a 1001st record fails the load
SIGNATURES = (SERVING_DEFAULT, SERVING_EXAMPLES)  # the two a caller uses: raw text (REST) and tf.Examples
NUM_EXAMPLES = 4  # gate examples per signature: one record each, plus one batch of them all


class WarmupFailed(Exception):
    """A warmup record failed as it fails TF Serving's load; `code` is the TF error code's name."""

    def __init__(self, message: str, code: str = "INVALID_ARGUMENT"):
        from tensorflow.core.lib.core import error_codes_pb2

        super().__init__(message)
        self.code = code
        self.error_code = error_codes_pb2.Code.Value(code)  # as a tf.errors.OpError has it (serve's state)


def prediction_logs(model, examples, model_name: str, num_examples: int = NUM_EXAMPLES) -> list:
    """The warmup records for `model` (a Model artifact) from the first gate examples of `examples`.

    serving_examples: TFX InfraValidator's own request builder (request_builder.build_requests: a
    PredictRequest per serialized tf.Example). serving_default takes raw text, which that builder cannot
    make (it feeds the serialized record to a single-string-input signature), so its requests carry the
    same examples' text. Then one batch request per signature, so the batched shapes are warm too.
    """
    import tensorflow as tf
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    from tfx.components.infra_validator import request_builder
    from tfx.proto import infra_validator_pb2

    spec = infra_validator_pb2.RequestSpec(
        tensorflow_serving=infra_validator_pb2.TensorFlowServingRequestSpec(signature_names=[SERVING_EXAMPLES]),
        split_name=EVAL_SPLIT, num_examples=num_examples)
    by_example = request_builder.build_requests(model_name, model, examples, spec)
    records = [r.inputs[EXAMPLES_INPUT].string_val[0] for r in by_example]
    texts = [example_pb2.Example.FromString(r).features.feature[TEXT].bytes_list.value[0] for r in records]

    def request(signature: str, name: str, values: list):
        r = predict_pb2.PredictRequest()
        r.model_spec.name, r.model_spec.signature_name = model_name, signature
        r.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
        return r

    requests = (by_example + [request(SERVING_DEFAULT, TEXT, [t]) for t in texts]
                + [request(SERVING_EXAMPLES, EXAMPLES_INPUT, records), request(SERVING_DEFAULT, TEXT, texts)])
    return [prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=r)) for r in requests]


def write(model_dir: str, logs: list) -> str:
    """Writes the records as `model_dir`'s warmup file (TFX's writer, as InfraValidator's _CreateWarmupModel)."""
    from tfx.utils import io_utils, path_utils

    if len(logs) > MAX_RECORDS:
        raise ValueError(f"{len(logs)} warmup records; TF Serving refuses more than {MAX_RECORDS}")
    path = path_utils.warmup_file_path(model_dir)
    io_utils.write_tfrecord_file(path, *logs)
    return path


def read(model_dir: str) -> list[bytes]:
    """The warmup file's raw records ([] when there is none). A corrupt file: DATA_LOSS (WU:226-230)."""
    import tensorflow as tf

    path = os.path.join(model_dir, WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    try:
        return [r.numpy() for r in tf.data.TFRecordDataset(path)]
    except tf.errors.DataLossError as e:
        raise WarmupFailed(f"{e.message}. Please verify your warmup data is in TFRecord format.", "DATA_LOSS") from None


def replay(model_dir: str, signatures: dict) -> int:
    """Runs every warmup record of `model_dir` through `signatures` (name -> loaded concrete function) as TF
    Serving's load does; raises WarmupFailed at the first failing record. Returns how many ran."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model_dir, WARMUP_FILE)
    count = 0
    for i, raw in enumerate(read(model_dir)):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(raw)
        except Exception:  # noqa: BLE001  (protobuf's DecodeError; WU:114-117)
            raise WarmupFailed(f"Failed to parse warmup record {i} from {path}") from None
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            _predict(log.predict_log.request, signatures, i)
        elif kind in ("predict_streamed_log", "session_run_log"):  # saved_model_warmup.cc:67-72
            raise WarmupFailed(f"Unsupported log_type for warmup: {kind} (record {i})", "UNIMPLEMENTED")
        elif kind is not None:
            # classify/regress/multi_inference: TF Serving runs them through classifier.cc/regressor.cc, which
            # refuse this model's signatures (4 outputs: "Expected one or two output Tensors"). Not emulated.
            raise WarmupFailed(f"warmup record {i} is a {kind}; this model's signatures serve Predict only")
        count += 1  # a record with no log_type runs nothing (saved_model_warmup.cc:73-74)
        if count > MAX_RECORDS:  # counted after the record ran, as WU:122-127
            raise WarmupFailed(f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}")
    return count


def _predict(request, signatures: dict, i: int) -> None:
    """One PredictRequest, with RunPredict's checks (servables/tensorflow/predict_util.cc:84-160)."""
    import tensorflow as tf

    name = request.model_spec.signature_name or SERVING_DEFAULT  # predict_util.cc:85-87
    fn = signatures.get(name)
    if fn is None:
        raise WarmupFailed(f'Serving signature key "{name}" not found. (warmup record {i})', "FAILED_PRECONDITION")
    expected = set(fn.structured_input_signature[1])
    sent = set(request.inputs)
    if len(sent) != len(expected):  # VerifyRequestInputsSize (predict_util.cc:51-73); no signature defaults here
        raise WarmupFailed(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sorted(sent))}}}) "
            f"!= len({{{','.join(sorted(expected))}}}). Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}. (warmup record {i})")
    for alias in sorted(expected - sent):  # GetInputValues (tensorflow/cc/saved_model/util.cc, TF 2.16)
        raise WarmupFailed(f"Signature input alias: {alias} not found in request and no default value provided. "
                           f"Inputs expected to be in the request {{{','.join(sorted(sent))}}}. (warmup record {i})")
    outputs = set(fn.structured_outputs)
    for alias in request.output_filter:  # predict_util.cc:133-141
        if alias not in outputs:
            raise WarmupFailed(f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                               f"set {{{','.join(sorted(outputs))}}}. (warmup record {i})")
    try:
        fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    except tf.errors.OpError as e:  # the Session::Run error, as TF Serving returns it
        from tensorflow.core.lib.core import error_codes_pb2

        raise WarmupFailed(f"warmup record {i} ({name}): {e.message.strip().splitlines()[0]}",
                           error_codes_pb2.Code.Name(e.error_code)) from None
    except (TypeError, ValueError) as e:  # a tensor of the wrong dtype or rank for the signature
        raise WarmupFailed(f"warmup record {i} ({name}): {str(e).strip().splitlines()[0]}") from None


def check(model_dir: str) -> dict:
    """In a fresh process: load `model_dir` as TF Serving does and replay its warmup file.
    Returns {"ok", "reason", "records", "load_s", "warmup_s"}."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the graph holds)
    from tensorflow.python.saved_model import loader_impl

    started = time.monotonic()
    try:
        declared = set(loader_impl.parse_saved_model(model_dir).meta_graphs[0].signature_def)
        saved = tf.saved_model.load(model_dir, tags=[tf.saved_model.SERVING])
    except Exception as e:  # noqa: BLE001  (any load error is the verdict)
        return {"ok": False, "reason": f"the model does not load with the serve tag: {_first_line(e)}"}
    loaded = time.monotonic()
    declared.discard("__saved_model_init_op")  # run at load, not a signature callers use
    missing = sorted((declared | set(SIGNATURES)) - set(saved.signatures))
    if missing:
        return {"ok": False, "reason": f"signature(s) {', '.join(missing)} missing from the loaded model"}
    try:
        records = replay(model_dir, dict(saved.signatures))
    except WarmupFailed as e:
        return {"ok": False, "reason": f"a warmup record failed, so TF Serving would not load it ({e.code}): {e}"}
    return {"ok": True, "reason": "", "records": records, "load_s": round(loaded - started, 2),
            "warmup_s": round(time.monotonic() - loaded, 2)}


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


if __name__ == "__main__":  # the clean process ServabilityCheck starts: one JSON line
    import json
    import sys

    print(json.dumps(check(sys.argv[1])))
