"""`serve --grpc-port`: TF Serving 2.16.1's gRPC API beside the REST one, in the same process, over the same
loaded version: PredictionService (Predict, Classify, Regress, MultiInference, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest), on grpcio and tensorflow-serving-api's own stubs.

A thin adapter: protos in; ModelServer's lookups (servable, status: label handling included) and the :predict
path's pieces (loaded_model.run, limit_texts) in between; protos out. Codes and texts are TF Serving's. Sources,
tensorflow/serving @ 2.16.1: PSI = model_servers/prediction_service_impl.cc, PI/PU = servables/tensorflow/
predict_impl.cc / predict_util.cc, SC = model_servers/server_core.cc, CL/RG = servables/tensorflow/classifier.cc /
regressor.cc, MI/MIH = multi_inference.cc / multi_inference_helper.cc, GMM = get_model_metadata_impl.cc, MS =
model_servers/model_service_impl.cc, GS = model_servers/grpc_status_util.cc; TFU = TensorFlow's
cc/saved_model/util.cc at TF Serving's pin (5bc9d266; its texts are in this venv's libtensorflow_cc.so.2).
"""
from __future__ import annotations

import functools
import itertools
import os
import socket
import time
import traceback
from concurrent import futures

import numpy as np

from components.names import EXAMPLES_INPUT
from ops.serving import loaded_model
from ops.serving.rest.body import ApiError

DEFAULT_SIGNATURE = "serving_default"  # kDefaultServingSignatureDefKey
_ERRORS = itertools.count(1)
# Tensor::AsProtoField (TF Serving's default serialization, server_core.h:196-200): values in the typed field.
_FIELDS = {"DT_FLOAT": "float_val", "DT_DOUBLE": "double_val", "DT_INT32": "int_val", "DT_INT16": "int_val",
           "DT_INT8": "int_val", "DT_UINT8": "int_val", "DT_INT64": "int64_val", "DT_BOOL": "bool_val",
           "DT_STRING": "string_val"}


class Failed(Exception):
    """A TF Status: its code's name (grpc.StatusCode's names are TF's) and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def check_port(host: str, port: int) -> None:
    """Raises OSError when the port cannot be bound: `serve` fails at start, as for the REST port. The gRPC
    server itself binds only when it starts serving (TF Serving opens it after the first load: server.cc:345-375)."""
    if port:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.bind((host, port))


def start(app):
    """(grpc server, port) serving ``app`` (a ModelServer) on serve.host:serve.grpc_port (0: any free port)."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    serve = app.config.serve
    server = grpc.server(futures.ThreadPoolExecutor(serve.max_threads, thread_name_prefix="serve-grpc"), options=[
        ("grpc.so_reuseport", 0),  # grpcio's default 1 would share a port another server holds
        # a deviation, as REST's body bound: TF Serving takes messages up to 2 GiB (server.cc:390)
        ("grpc.max_receive_message_length", serve.max_body_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(app), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(app), server)
    host = f"[{serve.host}]" if ":" in serve.host else serve.host
    port = server.add_insecure_port(f"{host}:{serve.grpc_port}")  # raises RuntimeError when it cannot bind
    server.start()
    return server, port


_COUNTED = ("Predict", "Classify", "Regress")  # what TF Serving counts over gRPC (PSI:52-59,92-99,121-128)


def _answered(method):
    """A servicer method: a Failed or ApiError becomes its gRPC status (message cut at 1024 characters with
    '...TRUNCATED', GS:25-34); anything else INTERNAL with a numbered line in the log, never Python's text.
    Predict, Classify and Regress are counted in the Prometheus metrics as TF Serving counts them."""
    @functools.wraps(method)
    def wrapper(self, request, context):
        import grpc

        started, code, failure = time.monotonic(), "OK", None
        try:
            return method(self, request, context)
        except (Failed, ApiError) as e:
            message = str(e)
            code, failure = e.code, (grpc.StatusCode[e.code],
                                     message[:1024] + "...TRUNCATED" if len(message) > 1024 else message)
        except Exception as e:  # noqa: BLE001  (a bug or a TF failure: answered, never fatal)
            number, where = next(_ERRORS), traceback.extract_tb(e.__traceback__)[-1]
            self.app.log(f"internal error {number} on gRPC {method.__name__}: {type(e).__name__}: {e} "
                         f"(at {os.path.basename(where.filename)}:{where.lineno})")
            code, failure = "INTERNAL", (grpc.StatusCode.INTERNAL, f"Internal error {number} while processing "
                                                                   "the request; the server's log has the details")
        finally:
            metrics = getattr(self.app, "metrics", None)
            if metrics is not None and method.__name__ in _COUNTED:
                metrics.request(request.model_spec.name, method.__name__, code, time.monotonic() - started,
                                entrypoint="GRPC")
        context.abort(*failure)
    return wrapper


def _servable(app, spec):
    """ServerCore::GetServableHandle (SC:790-820): a name is required; version / version_label / latest. Labels
    (through the model config's version_labels) and NOT_FOUND texts are ModelServer.lookup's, shared with REST."""
    if not spec.name:
        raise Failed("INVALID_ARGUMENT", "ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    return app.lookup(spec.name, spec.version.value if choice == "version" else None,
                        spec.version_label if choice == "version_label" else None)


def _model_spec(out, name: str, signature: str | None, version: int) -> None:
    """MakeModelSpec (servables/tensorflow/util.cc:259-273)."""
    out.name = name
    if signature is not None:
        out.signature_name = signature or DEFAULT_SIGNATURE
    out.version.value = version


def _signature_def(model, name: str):
    from google.protobuf import json_format
    from tensorflow.core.protobuf import meta_graph_pb2

    return json_format.ParseDict(model.signature_defs[name], meta_graph_pb2.SignatureDef())


def _preprocess(method: str, model, name: str) -> None:
    """PreProcessClassification / PreProcessRegression (CL:176-213, RG:170-203), the method-name check off as by
    default (server.h:102). Every signature of this model fails here; one that would pass is not run by this
    stand-in (UNIMPLEMENTED, as REST's 501)."""
    sig = model.signature_defs[name]
    inputs, outputs, kind = sig.get("inputs", {}), sig.get("outputs", {}), method.split("/")[-1]
    if len(inputs) != 1:
        raise Failed("INVALID_ARGUMENT", "Expected one input Tensor.")
    if kind == "classify" and len(outputs) not in (1, 2):
        raise Failed("INVALID_ARGUMENT", f"Expected one or two output Tensors, found {len(outputs)}")
    if kind == "regress" and len(outputs) != 1:
        raise Failed("INVALID_ARGUMENT", "Expected one output Tensor.")
    what = "classification" if kind == "classify" else "regression"
    if "inputs" not in inputs:
        raise Failed("INVALID_ARGUMENT", f"No {what} inputs found in SignatureDef: {_signature_def(model, name)}")
    if kind == "classify" and not {"classes", "scores"} & set(outputs):
        raise Failed("INVALID_ARGUMENT", 'Expected classification signature outputs to contain at least one of '
                                         f'"classes" or "scores". Signature was: {_signature_def(model, name)}')
    if kind == "regress" and "outputs" not in outputs:
        raise Failed("INVALID_ARGUMENT", f"No regression outputs found in SignatureDef: {_signature_def(model, name)}")
    raise Failed("UNIMPLEMENTED", f"{kind} is not implemented by this development stand-in; use Predict")


def _tensor_proto(array: np.ndarray):
    """Tensor::AsProtoField: dtype, shape, values in the typed field (float_val, string_val, ...)."""
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    proto = tf.make_tensor_proto(array)
    field = _FIELDS.get(_dtype(proto.dtype))
    if field is None or not proto.tensor_content:
        return proto
    flat = tensor_pb2.TensorProto(dtype=proto.dtype, tensor_shape=proto.tensor_shape)
    getattr(flat, field).extend(array.reshape(-1).tolist())
    return flat


def _dtype(enum: int) -> str:  # DT_FLOAT, ...
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(enum)


class Prediction:
    """tensorflow.serving.PredictionService (PSI)."""

    def __init__(self, app):
        self.app = app

    @_answered
    def Predict(self, request, context):
        """TensorflowPredictor::Predict (PI:33-60) then RunPredict / PreProcessPrediction (PU:78-161)."""
        from tensorflow_serving.apis import predict_pb2

        if not request.HasField("model_spec"):
            raise Failed("INVALID_ARGUMENT", "Missing ModelSpec")
        model = _servable(self.app, request.model_spec)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in model.signature_defs:  # PU:85-92
            raise Failed("FAILED_PRECONDITION", f'Serving signature key "{name}" not found.')
        sig = model.signature_defs[name]
        inputs, outputs = sig.get("inputs", {}), sig.get("outputs", {})
        sent = set(request.inputs)
        if len(sent) > len(inputs) or (len(sent) < len(inputs) and not sig.get("defaults")):  # PU:51-73
            raise Failed("INVALID_ARGUMENT", (
                f"input size does not match signature: {len(sent)}!={len(inputs)} len({{{','.join(sorted(sent))}}}) "
                f"!= len({{{','.join(sorted(inputs))}}}). Sent extra: {{{','.join(sorted(sent - set(inputs)))}}}. "
                f"Missing but required: {{{','.join(sorted(set(inputs) - sent))}}}."))
        tensors = self._input_values(sig, request.inputs)
        wanted = list(request.output_filter)
        for i, alias in enumerate(wanted):  # PU:130-151
            if alias not in outputs:
                raise Failed("INVALID_ARGUMENT", f"output tensor alias not found in signature: {alias} Outputs "
                                                 f"expected to be in the set {{{','.join(sorted(outputs))}}}.")
            if alias in wanted[:i]:
                raise Failed("INVALID_ARGUMENT", f"duplicate output tensor alias: {alias}")
        for i, alias in enumerate(sorted(inputs)):  # the Session's feed check (FunctionCallFrame::SetArgs)
            want, got = inputs[alias]["dtype"], _dtype(request.inputs[alias].dtype)
            if want != got:  # DataTypeString: DT_FLOAT -> float
                raise Failed("INVALID_ARGUMENT", f"Expects arg[{i}] to be {want.removeprefix('DT_').lower()} but "
                                                 f"{got.removeprefix('DT_').lower()} is provided")
        fetched = {"outputs": {a: outputs[a] for a in wanted or outputs}}
        if (missing := loaded_model.unfetchable_output(fetched)) is not None:  # as REST's (a sparse output)
            raise Failed("INVALID_ARGUMENT", f"Tensor {missing}, specified in either feed_devices or fetch_devices "
                                             "was not found in the Graph")
        fn = model.signatures.get(name)
        if fn is None:  # __saved_model_init_op: no function to call here
            raise Failed("UNIMPLEMENTED", f"signature {name} cannot be run by this development stand-in")
        serve = self.app.config.serve
        count = max((t.size for t in tensors.values()), default=0)
        if count > serve.max_instances:  # a deviation, as REST's (serve.max_instances)
            raise Failed("INVALID_ARGUMENT", f"Request has {count} instances; this server answers at most "
                                             f"{serve.max_instances} per request (serve.max_instances, a protection "
                                             "of the development stand-in; TF Serving has no such limit)")
        cut = loaded_model.limit_texts(tensors, serve.max_text_chars or self.app.config.contract.max_text_chars,
                                       serve.truncate_long_texts)
        started = time.monotonic()
        result = loaded_model.run(fn, tensors, serve.predict_chunk)
        seconds = time.monotonic() - started
        if self.app.metrics is not None:
            self.app.metrics.predicted(model.version, count, cut, seconds)
        if len(tensors) == 1:  # the request log, as for REST's :predict
            (alias, values), = tensors.items()
            self.app.record(model, name, alias == EXAMPLES_INPUT, list(values.reshape(-1)), result, seconds=seconds)
        response = predict_pb2.PredictResponse()
        _model_spec(response.model_spec, request.model_spec.name, name, model.version)
        for alias in wanted or sorted(result):
            response.outputs[alias].CopyFrom(_tensor_proto(result[alias]))
        return response

    @staticmethod
    def _input_values(sig: dict, sent) -> dict:
        """saved_model::GetInputValues (TFU): each signature input from the request; then no name left over."""
        import tensorflow as tf

        tensors = {}
        for alias, info in sorted(sig.get("inputs", {}).items()):
            if alias not in sent:
                raise Failed("INVALID_ARGUMENT", (
                    f"Signature input alias: {alias}(feed name: {info.get('name', '')}) not found in request and no "
                    f"default value provided. Inputs expected to be in the request {{{','.join(sorted(sent))}}}, or "
                    f"default input alias set: {','.join(sorted(sig.get('defaults', {})))}"))
            try:
                tensors[alias] = tf.make_ndarray(sent[alias])
            except Exception:  # noqa: BLE001  (Tensor::FromProto failed)
                raise Failed("INVALID_ARGUMENT", f"tensor parsing error: {alias}") from None
        if sent and len(tensors) != len(sent):
            raise Failed("INVALID_ARGUMENT", f"Inputs contains invalid name. Used request inputs: "
                                             f"{','.join(sorted(tensors))}, request input: {','.join(sorted(sent))}")
        return tensors

    @_answered
    def GetModelMetadata(self, request, context):
        """GMM:33-98: a model spec, at least one field, only signature_def; the whole SignatureDefMap."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        if not request.HasField("model_spec"):
            raise Failed("INVALID_ARGUMENT", "Missing ModelSpec")
        if not request.metadata_field:
            raise Failed("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise Failed("INVALID_ARGUMENT", f"Metadata field {field} is not supported")
        model = _servable(self.app, request.model_spec)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _model_spec(response.model_spec, request.model_spec.name, None, model.version)
        response.metadata["signature_def"].Pack(json_format.ParseDict(
            {"signature_def": model.signature_defs}, get_model_metadata_pb2.SignatureDefMap()))
        return response

    def _classify_or_regress(self, request, method: str):
        """CL:151-174,326-347 and RG:146-168,269-290: the servable, the signature by name, its shape."""
        if not request.HasField("model_spec"):
            raise Failed("INVALID_ARGUMENT", "Missing ModelSpec")
        model = _servable(self.app, request.model_spec)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in model.signature_defs:
            raise Failed("INVALID_ARGUMENT", f"No signature was found with the name: {name}")
        _preprocess(method, model, name)

    @_answered
    def Classify(self, request, context):
        self._classify_or_regress(request, "tensorflow/serving/classify")

    @_answered
    def Regress(self, request, context):
        self._classify_or_regress(request, "tensorflow/serving/regress")

    @_answered
    def MultiInference(self, request, context):
        """MIH:28-57 (the first task's model spec) then TensorFlowMultiInferenceRunner::Infer's checks (MI:42-87)."""
        from tensorflow_serving.apis import model_pb2

        first = request.tasks[0].model_spec if request.tasks and request.tasks[0].HasField("model_spec") \
            else model_pb2.ModelSpec()
        model, names, seen = _servable(self.app, first), set(), None
        for task in request.tasks:
            if not task.model_spec.name:
                raise Failed("INVALID_ARGUMENT", "Found ModelSpec with an empty model name.")
            if seen is not None and seen != task.model_spec.name:
                raise Failed("INVALID_ARGUMENT",
                             "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            seen, name = task.model_spec.name, task.model_spec.signature_name or DEFAULT_SIGNATURE
            if name in names:
                raise Failed("INVALID_ARGUMENT", f"Duplicate evaluation of signature: {name}")
            names.add(name)
            if name not in model.signature_defs:
                raise Failed("INVALID_ARGUMENT", f"Requested signature not found in model graph: {name}")
            if task.method_name not in ("tensorflow/serving/classify", "tensorflow/serving/regress"):
                raise Failed("UNIMPLEMENTED", f"Unsupported signature method_name: {task.method_name}")
            try:
                _preprocess(task.method_name, model, name)
            except Failed as e:
                if e.code != "UNIMPLEMENTED":
                    raise
        raise Failed("UNIMPLEMENTED", "MultiInference is not implemented by this development stand-in; use Predict")


class Models:
    """tensorflow.serving.ModelService (MS:33-82)."""

    def __init__(self, app):
        self.app = app

    @_answered
    def GetModelStatus(self, request, context):
        """get_model_status_impl.cc:66-109, through ModelServer.status (REST's): the label is ignored."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        if not request.HasField("model_spec"):
            raise Failed("INVALID_ARGUMENT", "Missing ModelSpec")
        spec = request.model_spec
        body = self.app.status(spec.name, spec.version.value if spec.HasField("version") else None)
        return json_format.Parse(body, get_model_status_pb2.GetModelStatusResponse())

    @_answered
    def HandleReloadConfigRequest(self, request, context):
        """MS:44-82: only a ModelConfigList; then ServerCore::ReloadConfig's checks (SC:437-469), TF Serving's texts
        from ops/serving/model_config.py. Without --model_config_file TF Serving's config is already one
        ModelConfigList entry (server.cc:74-86,209-211), so the list sent is loaded, as ModelServer.reload does for a
        changed config file."""
        from google.protobuf import text_format
        from tensorflow_serving.apis import model_management_pb2

        from ops.serving import model_config

        if request.config.WhichOneof("config") != "model_config_list":
            raise Failed("INVALID_ARGUMENT", "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                                             "Only ModelConfigList is currently supported")
        entries = model_config.parse(text_format.MessageToString(request.config), "HandleReloadConfigRequest") or []
        try:
            model_config.validate(entries)
        except model_config.ModelConfigError as e:
            raise Failed("INVALID_ARGUMENT", str(e)) from None
        try:  # ServerCore::ReloadConfig: new models load before the answer, removed ones unload, labels move
            self.app.reload(entries)
        except model_config.ModelConfigError as e:
            raise Failed("INVALID_ARGUMENT", str(e)) from None
        response = model_management_pb2.ReloadConfigResponse()
        response.status.SetInParent()  # OK: TF Serving sets it whatever the outcome (MS:79-80)
        return response
