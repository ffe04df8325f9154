"""One loaded version for `serve`, and the :predict path (TF Serving's order of checks, JT:599-651).

TensorFlow is imported inside the functions: `transferline --help` imports the command modules.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from typing import NamedTuple

import numpy as np

from components.names import EXAMPLES_INPUT, TEXT
from ops.serving.rest import body as rest_json
from ops.serving.rest import tensors as rest_tensors
from ops.serving.rest.body import ApiError, bad

# TF error code -> HTTP status (http_server.cc:46-87).
HTTP_STATUS = {"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
               "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
               "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
               "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}


class Model(NamedTuple):
    version: int
    signatures: dict  # name -> concrete function
    inputs: dict      # name -> {input name: dtype name ("string", ...)}, the SignatureDef's inputs
    signature_defs: dict  # name -> SignatureDef as JSON, every one (__saved_model_init_op included)
    saved: object     # holds the functions' variables


def fingerprint(path: str) -> list:
    """A version's file names and sizes: one that failed to load is tried again only once it changes."""
    import tensorflow as tf

    return sorted((os.path.join(d, f), tf.io.gfile.stat(os.path.join(d, f)).length)
                  for d, _, files in tf.io.gfile.walk(path) for f in files)


def _signature_defs(path: str) -> dict:
    """The MetaGraphDef's signature_def map as protobuf JSON, as GetModelMetadata returns it
    (get_model_metadata_impl.cc:47-63; printed with preserve_proto_field_names, http_rest_api_util.cc:145-198)."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return {name: json_format.MessageToDict(sig, preserving_proto_field_name=True,
                                            including_default_value_fields=True)
            for name, sig in sorted(proto.meta_graphs[0].signature_def.items())}


def load(version: int, path: str) -> Model:
    """Loads a version as TF Serving does: the SavedModel with the serve tag, then its warmup file replayed
    (assets.extra/tf_serving_warmup_requests; components/warmup.py). A failing record fails the load
    (WarmupFailed), so the version never becomes AVAILABLE; without the file the first request pays."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the SentencePiece ops the graph holds)

    from components import warmup

    saved = tf.saved_model.load(path, tags=[tf.saved_model.SERVING])
    signatures = dict(saved.signatures)
    inputs = {name: {k: s.dtype.name for k, s in fn.structured_input_signature[1].items()}
              for name, fn in signatures.items()}
    warmup.replay(path, signatures)
    return Model(version, signatures, inputs, _signature_defs(path), saved)


def _op_message(error) -> str:
    """A TF op error as TF Serving reports a Session::Run failure: the message with its [[{{node ...}}]] suffix,
    without the eager-function noise (the 'Graph execution error' header, stack lines, [Op:...])."""
    lines = error.message.split("\n")
    if lines and lines[0].startswith("Graph execution error"):
        start = next((i + 1 for i, line in enumerate(lines) if line.startswith("<stack traces")), None)
        if start is None:
            start = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith(
                ("Graph execution error", "Detected at node", "  "))), 0)
        lines = lines[start:]
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", "\n".join(lines)).strip()


def run(fn, tensors: dict, chunk: int) -> dict:
    """The signature on the request's tensors, `chunk` instances at a time so memory stays bounded (outputs
    are concatenated). Called flat, as a Session feeds a tensor: no shape check against the signature
    (servables/tensorflow/predict_util.cc:119-130), so a nested list is a tensor of another rank."""
    import tensorflow as tf
    from tensorflow.core.lib.core import error_codes_pb2

    names = sorted(tensors)
    specs = fn.structured_input_signature[1]
    trusted = all(specs[k].shape.is_compatible_with(tensors[k].shape) for k in names if k in specs)
    n = {t.shape[0] if t.ndim else None for t in tensors.values()}
    batch = n.pop() if len(n) == 1 else None
    bounds = [(0, None)] if not batch else [(i, i + chunk) for i in range(0, batch, chunk)]
    parts = []
    for lo, hi in bounds:
        flat = [tf.constant(tensors[k][lo:hi] if batch else tensors[k]) for k in names]
        try:
            with contextlib.nullcontext() if trusted else _shapes_not_trusted():
                out = fn._call_flat(flat, fn.captured_inputs)
        except tf.errors.OpError as e:
            code = error_codes_pb2.Code.Name(e.error_code)
            raise ApiError(HTTP_STATUS.get(code, 500), _op_message(e), code=code) from None
        parts.append({k: v.numpy() for k, v in out.items()})
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@contextlib.contextmanager
def _shapes_not_trusted():
    """This thread's function calls without Grappler. TF Serving feeds a tensor of another shape than the
    signature declares to a Session, whose Grappler does not trust fed shapes, so the graph computes with the
    real one; the eager runtime trusts the declared shape ([None]): its arithmetic optimizer dropped the
    fine_tune model's reshape pair, and a [1, 2] tensor of texts then failed in the encoder (segment_ids[6] = 1
    is out of range) where a Session answers two predictions. function_call_options is thread-local."""
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.eager import context

    ctx = context.context()
    saved = ctx.function_call_options
    config = config_pb2.ConfigProto.FromString(saved.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    ctx.function_call_options = context.FunctionCallOptions(saved.executor_type, config)
    try:
        yield
    finally:
        ctx.function_call_options = saved


def unfetchable_output(signature_def: dict) -> str | None:
    """The tensor TF Serving's Session cannot fetch, if any: Predict fetches every output by its TensorInfo
    name (predict_util.cc:154-159), and a sparse (coo_sparse) or composite output has none; "" parses as
    the tensor ":0", which the Session refuses before it runs (TF's graph_execution_state.cc
    ValidateFeedAndFetchDevices; a TF1 Session on the pushed model's transform_features says so)."""
    if any(not info.get("name") for info in signature_def.get("outputs", {}).values()):
        return ":0"
    return None


def limit_texts(tensors: dict, limit: int, truncate: bool) -> int:
    """Cuts, in place, every string longer than ``limit`` characters to its first ``limit`` (a serialized
    tf.Example, the ``examples`` input: its text feature), or refuses the request (400) when not ``truncate``.
    Returns how many were cut. A deviation (TF Serving runs any length): a model's time and memory grow with
    a text's length, and training never saw texts past contract.max_text_chars."""
    cut = 0
    for name, array in tensors.items():
        if array.dtype != object:
            continue
        flat = array.reshape(-1)  # a view: assigning writes through
        for i, raw in enumerate(flat):
            if len(raw) <= limit:  # bytes >= characters: most strings stop here
                continue
            shorter = _cut_example(raw, limit) if name == EXAMPLES_INPUT else _cut(raw, limit)
            if shorter is None:
                continue
            if not truncate:
                raise bad(f"Instance {i} of input '{name}' has a text longer than {limit} characters, the most this "
                          "server takes (serve.max_text_chars, a protection of the development stand-in; TF Serving "
                          "has no such limit)")
            flat[i], cut = shorter, cut + 1
    return cut


def _cut(raw: bytes, limit: int) -> bytes | None:
    text = raw.decode("utf-8", "surrogateescape")  # round-trips any bytes, UTF-8 or not
    return text[:limit].encode("utf-8", "surrogateescape") if len(text) > limit else None


def _cut_example(raw: bytes, limit: int) -> bytes | None:
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        example = example_pb2.Example.FromString(raw)
    except DecodeError:
        return None  # not a tf.Example: the model's parse op refuses it, as on TF Serving
    if TEXT not in example.features.feature:
        return None
    values, changed = example.features.feature[TEXT].bytes_list.value, False
    for j, value in enumerate(values):
        if (shorter := _cut(value, limit)) is not None:
            values[j], changed = shorter, True
    return example.SerializeToString() if changed else None


def predict(body: bytes, lookup, config, record=None, metrics=None) -> bytes:
    """The whole :predict path, body -> response bytes, in TF Serving's order: parse the JSON, check
    signature_name, find the servable (lookup: -> Model, raises 404/400), find the signature, read the
    tensors, run. Raises ApiError. ``record(model, signature, examples, inputs, outputs)``: the request
    log (ops/serving/request_log.py), told of answered requests only; it queues and never waits.
    ``metrics``: an ops/serving/metrics.Metrics, told of each run."""
    doc = rest_json.parse(body)
    signature = rest_tensors.signature_name(doc) or "serving_default"
    model: Model = lookup()
    if signature not in model.signature_defs:  # every SignatureDef, __saved_model_init_op too (HRA:228-241)
        raise bad(f'Serving signature name: "{signature}" not found in signature def')
    # the init op has no inputs: "Failed to get input map for signature: ..." (JT:612-616)
    form, tensors = rest_tensors.request_tensors(doc, model.inputs.get(signature, {}))
    count = max((t.size for t in tensors.values()), default=0)
    if count > config.serve.max_instances:  # a deviation: TF Serving has no such limit
        raise bad(f"Request has {count} instances; this server answers at most {config.serve.max_instances} "
                  "per request (serve.max_instances, a protection of the development stand-in; TF Serving "
                  "has no such limit). Send them in several requests.")
    cut = limit_texts(tensors, config.serve.max_text_chars or config.contract.max_text_chars,
                      config.serve.truncate_long_texts)
    if (missing := unfetchable_output(model.signature_defs[signature])) is not None:
        raise bad(f"Tensor {missing}, specified in either feed_devices or fetch_devices was not found in the Graph")
    started = time.monotonic()
    outputs = run(model.signatures[signature], tensors, config.serve.predict_chunk)
    seconds = time.monotonic() - started
    if metrics is not None:
        metrics.predicted(model.version, count, cut, seconds)
    if record is not None and len(tensors) == 1:
        (name, values), = tensors.items()
        record(model, signature, name == EXAMPLES_INPUT, list(values.reshape(-1)), outputs, seconds=seconds)
    return rest_tensors.predict_response(outputs, form)


def classify_or_regress(verb: str, body: bytes, lookup) -> bytes:
    """:classify / :regress in TF Serving's order: the body (JSON, signature_name, 'context', 'examples': JT:765-806),
    then the servable, the signature (classifier.cc:151-161, regressor.cc:146-155) and its number of inputs and
    outputs (the method-name check off, its default: classifier.cc:176-193, regressor.cc:170-186). A signature
    they would accept: 501 here."""
    signature = rest_tensors.examples_request(rest_json.parse(body)) or "serving_default"
    model: Model = lookup()
    signature_def = model.signature_defs.get(signature)
    if signature_def is None:
        raise bad(f"No signature was found with the name: {signature}")
    if len(signature_def.get("inputs", {})) != 1:
        raise bad("Expected one input Tensor.")
    outputs = len(signature_def.get("outputs", {}))
    if verb == "classify" and outputs not in (1, 2):
        raise bad(f"Expected one or two output Tensors, found {outputs}")
    if verb == "regress" and outputs != 1:
        raise bad("Expected one output Tensor.")
    raise ApiError(501, f":{verb} is not implemented by this development stand-in; use :predict")
