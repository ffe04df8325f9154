"""`serve --grpc-port` (issue 31, gRPC): TF Serving's gRPC API beside REST, over the same loaded version, asked
through TF Serving's own stubs (tensorflow-serving-api) over grpc.insecure_channel. Each error row of ERRORS
cites the tensorflow/serving 2.16.1 lines its code and text come from (ops/serving/grpc_api.py has the rest)."""
import os
import statistics
import time
import types

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from ops.cli import build_parser
from ops.serving.serve import ModelServer, PortInUse
from pipelines.config_loading import load_config
from serve_helpers import (PREDICT, TEXTS, make_config, model_dir, request, running,  # noqa: F401
                           serving_dir_with)

NAME = "transferline"
INVALID, NOT_FOUND, FAILED, UNIMPLEMENTED = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                             grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED)


def apis():
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                         inference_pb2, model_management_pb2, model_pb2, predict_pb2,
                                         regression_pb2)
    return types.SimpleNamespace(**{m.__name__.rsplit(".", 1)[-1]: m for m in (
        classification_pb2, get_model_metadata_pb2, get_model_status_pb2, inference_pb2, model_management_pb2,
        model_pb2, predict_pb2, regression_pb2)})


def stubs(port):
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return types.SimpleNamespace(channel=channel, predict=prediction_service_pb2_grpc.PredictionServiceStub(channel),
                                 models=model_service_pb2_grpc.ModelServiceStub(channel))


def spec(name=NAME, version=None, label=None, signature=""):
    s = apis().model_pb2.ModelSpec(name=name, signature_name=signature)
    if version is not None:
        s.version.value = version
    if label is not None:
        s.version_label = label
    return s


def predict_request(texts=("Who wrote Hamlet ?",), input_name="text", **spec_args):
    import tensorflow as tf

    r = apis().predict_pb2.PredictRequest(model_spec=spec(**spec_args))
    if input_name:
        r.inputs[input_name].CopyFrom(tf.make_tensor_proto(list(texts), dtype=tf.string))
    return r


def refused(call, request_):
    """(code, details) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as e:
        call(request_, timeout=60)
    return e.value.code(), e.value.details()


def test_the_flag_and_the_knob():
    assert build_parser().parse_args(["serve", "--grpc-port", "8500"]).grpc_port == 8500
    assert build_parser().parse_args(["serve"]).grpc_port is None
    assert load_config(None, []).serve.grpc_port == -1  # off: one port unless asked


def test_a_busy_grpc_port_fails_at_start(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = make_config(str(tmp_path / "serving"), f"serve.grpc_port={busy.getsockname()[1]}")
        with pytest.raises(PortInUse, match="cannot listen for gRPC on 127.0.0.1:.*already in use; choose another "
                                            "with --grpc-port"):
            ModelServer(config, log=lambda m: None).start()


def test_the_grpc_port_opens_with_the_rest_one(tmp_path):
    """No version yet: neither port listens (TF Serving starts its gRPC server after the first load,
    server.cc:345-375); the gRPC port is bound only then."""
    os.makedirs(tmp_path / "serving")
    with running(make_config(str(tmp_path / "serving"), "serve.grpc_port=0")) as (server, _):
        assert not server.listening and server.grpc_port is None


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    """No version yet, listening at once (serve.listen_before_load): the gRPC port answers without a model."""
    serving_dir = str(tmp_path_factory.mktemp("grpc-empty") / "serving")
    os.makedirs(serving_dir)
    with running(make_config(serving_dir, "serve.grpc_port=0", "serve.listen_before_load=true")) as (server, _):
        yield types.SimpleNamespace(server=server, rpc=stubs(server.grpc_port), serving_dir=serving_dir)


def test_before_a_version_loads(empty):
    a, rpc = apis(), empty.rpc
    assert refused(rpc.models.GetModelStatus, a.get_model_status_pb2.GetModelStatusRequest(model_spec=spec())) == (
        NOT_FOUND, f"Could not find any versions of model {NAME}")  # get_model_status_impl.cc:96-100
    code, details = refused(rpc.predict.GetModelMetadata, a.get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=spec(), metadata_field=["signature_def"]))
    assert code == NOT_FOUND and details.startswith(f"Servable not found for request: Latest({NAME})")


def reload_request(*entries):
    r = apis().model_management_pb2.ReloadConfigRequest()
    r.config.model_config_list.SetInParent()
    for name, base_path in entries:
        r.config.model_config_list.config.add(name=name, base_path=base_path, model_platform="tensorflow")
    return r


def test_handle_reload_config_request(empty):
    """model_service_impl.cc:51-81 and server_core.cc:87-123: TF Serving's texts; a valid list is applied."""
    call, a = empty.rpc.models.HandleReloadConfigRequest, apis()
    assert refused(call, a.model_management_pb2.ReloadConfigRequest()) == (
        INVALID, "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is "
                 "currently supported")
    assert refused(call, reload_request(("m", "/a"), ("m", "/b"))) == (
        INVALID, "Illegal to list model m multiple times in config list")
    assert refused(call, reload_request(("m", "relative/dir"))) == (
        INVALID, "Expected model m to have an absolute path or URI; got base_path()=relative/dir")
    response = call(reload_request((NAME, empty.serving_dir)), timeout=60)  # without a config file: this one
    assert response.HasField("status") and response.status.error_code == 0 and not response.status.error_message
    # another list is applied, as ServerCore::ReloadConfig does: the model listed serves, the one left out goes
    status = a.get_model_status_pb2.GetModelStatusRequest
    assert call(reload_request(("other", empty.serving_dir)), timeout=60).status.error_code == 0
    assert empty.server._applied[0].name == "other"
    assert refused(empty.rpc.models.GetModelStatus, status(model_spec=spec("other"))) == (
        NOT_FOUND, "Could not find any versions of model other")
    assert call(reload_request((NAME, empty.serving_dir)), timeout=60).status.error_code == 0  # back
    assert [e.name for e in empty.server._applied] == [NAME]


# The model: 1 input (text / examples), 4 outputs. Each row: (method, request, code, details, TF Serving source).
def _rows(feed):
    a = apis()
    clf, reg, mi = a.classification_pb2, a.regression_pb2, a.inference_pb2
    meta = a.get_model_metadata_pb2.GetModelMetadataRequest
    return [
        ("Predict", a.predict_pb2.PredictRequest(), INVALID, "Missing ModelSpec", "predict_impl.cc:37-41"),
        ("Predict", predict_request(name=""), INVALID, "ModelSpec has no name specified.", "server_core.cc:792-794"),
        ("Predict", predict_request(name="nope"), NOT_FOUND, "Servable not found for request: Latest(nope)",
         "basic_manager.cc:132-133"),
        ("Predict", predict_request(version=7), NOT_FOUND, f"Servable not found for request: Specific({NAME}, 7)",
         "basic_manager.cc:132-133, server_core.cc:797-799"),
        ("Predict", predict_request(label="stable"), INVALID, "Unrecognized servable version label: stable",
         "server_core.cc:802-811,839-840"),
        ("Predict", predict_request(signature="nope"), FAILED, 'Serving signature key "nope" not found.',
         "predict_util.cc:85-92"),
        ("Predict", predict_request(input_name=None), INVALID, "input size does not match signature: 0!=1 len({}) != "
         "len({text}). Sent extra: {}. Missing but required: {text}.", "predict_util.cc:51-73"),
        ("Predict", predict_request(input_name="txt"), INVALID, f"Signature input alias: text(feed name: {feed}) not "
         "found in request and no default value provided. Inputs expected to be in the request {txt}, or default "
         "input alias set: ", "tensorflow/cc/saved_model/util.cc GetInputValues (TF 5bc9d266)"),
        ("Predict", _with_filter("label", "nope"), INVALID, "output tensor alias not found in signature: nope "
         "Outputs expected to be in the set {classes,label,probabilities,score}.", "predict_util.cc:133-142"),
        ("Predict", _with_filter("label", "label"), INVALID, "duplicate output tensor alias: label",
         "predict_util.cc:143-147"),
        ("Predict", _floats(), INVALID, "Expects arg[0] to be string but float is provided",
         "the Session's feed check (FunctionCallFrame::SetArgs; text in libtensorflow_framework.so.2)"),
        ("GetModelMetadata", meta(model_spec=spec()), INVALID,
         "GetModelMetadataRequest must specify at least one metadata_field", "get_model_metadata_impl.cc:34-38"),
        ("GetModelMetadata", meta(model_spec=spec(), metadata_field=["x"]), INVALID, "Metadata field x is not "
         "supported", "get_model_metadata_impl.cc:39-43"),
        ("Classify", clf.ClassificationRequest(model_spec=spec()), INVALID,
         "Expected one or two output Tensors, found 4", "classifier.cc:189-193"),
        ("Classify", clf.ClassificationRequest(model_spec=spec(signature="nope")), INVALID,
         "No signature was found with the name: nope", "classifier.cc:154-161"),
        ("Classify", clf.ClassificationRequest(model_spec=spec(signature="__saved_model_init_op")), INVALID,
         "Expected one input Tensor.", "classifier.cc:185-188"),
        ("Regress", reg.RegressionRequest(model_spec=spec()), INVALID, "Expected one output Tensor.",
         "regressor.cc:183-186"),
        ("Regress", reg.RegressionRequest(model_spec=spec(name="nope")), NOT_FOUND,
         "Servable not found for request: Latest(nope)", "classification_service.cc / regression_service.cc: the "
         "servable first"),
        ("MultiInference", mi.MultiInferenceRequest(), INVALID, "ModelSpec has no name specified.",
         "multi_inference_helper.cc:28-33, server_core.cc:792-794"),
        ("MultiInference", mi.MultiInferenceRequest(tasks=[mi.InferenceTask(
            model_spec=spec(), method_name="tensorflow/serving/classify")]), INVALID,
         "Expected one or two output Tensors, found 4", "multi_inference.cc:73-75, classifier.cc:189-193"),
        ("MultiInference", mi.MultiInferenceRequest(tasks=[mi.InferenceTask(model_spec=spec(), method_name="x")]),
         UNIMPLEMENTED, "Unsupported signature method_name: x", "multi_inference.cc:79-81"),
        ("MultiInference", mi.MultiInferenceRequest(tasks=[mi.InferenceTask(
            model_spec=spec(signature="nope"), method_name="tensorflow/serving/regress")]), INVALID,
         "Requested signature not found in model graph: nope", "multi_inference.cc:65-69"),
    ]


def _with_filter(*aliases):
    r = predict_request()
    r.output_filter.extend(aliases)
    return r


def _examples(signature, texts=TEXTS, output_filter=()):
    import tensorflow as tf

    examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts]
    r = apis().predict_pb2.PredictRequest(model_spec=spec(signature=signature), output_filter=output_filter)
    r.inputs["examples"].CopyFrom(tf.make_tensor_proto(examples, dtype=tf.string))
    return r


def _floats():
    import tensorflow as tf

    r = predict_request(input_name=None)
    r.inputs["text"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32))
    return r


@pytest.fixture(scope="module")
def both(model_dir, tmp_path_factory):
    """One server, REST and gRPC, on version 1 of the slice model."""
    serving_dir = serving_dir_with(model_dir, tmp_path_factory.mktemp("grpc"))
    with running(make_config(serving_dir, "serve.grpc_port=0", "serve.max_body_bytes=1000000",
                             "serve.max_instances=1000", "serve.monitoring=true")) as (server, logs):
        yield types.SimpleNamespace(url=server.url, rpc=stubs(server.grpc_port), server=server, logs=logs,
                                    serving_dir=serving_dir)


def outputs(response) -> dict:
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


@pytest.mark.slow
def test_predict_equals_rest(both):
    """The same texts through REST's :predict and gRPC's Predict: the same answers (1e-6), as TF Serving's
    response (model_spec per MakeModelSpec, util.cc:259-273; values in float_val / string_val, AsProtoField)."""
    response = both.rpc.predict.Predict(predict_request(TEXTS), timeout=120)
    assert (response.model_spec.name, response.model_spec.signature_name, response.model_spec.version.value) == (
        NAME, "serving_default", 1)
    assert response.outputs["probabilities"].float_val and not response.outputs["probabilities"].tensor_content
    got = outputs(response)
    status, rest = request(both.url, PREDICT, {"instances": TEXTS})
    assert status == 200 and set(got) == set(rest["predictions"][0])
    assert got["probabilities"].shape == (len(TEXTS), 6) and got["score"].shape == (len(TEXTS),)
    for i, row in enumerate(rest["predictions"]):
        np.testing.assert_allclose(got["probabilities"][i], row["probabilities"], atol=1e-6)
        assert abs(got["score"][i] - row["score"]) < 1e-6
        assert got["label"][i].decode() == row["label"] and [c.decode() for c in got["classes"][i]] == row["classes"]


@pytest.mark.slow
def test_grpc_requests_are_counted_as_tf_serving_counts_them(both):
    """Predict over gRPC: request_latency with API="Predict", entrypoint="GRPC" (prediction_service_impl.cc:52-59),
    beside REST's; a failed call counts in request_count only."""
    import re

    def count(api, entrypoint):
        m = re.search(rf':tensorflow:serving:request_latency_count{{model_name="{NAME}",API="{api}",'
                      rf'entrypoint="{entrypoint}"}} (\d+)', both.server.metrics.page().decode())
        return int(m.group(1)) if m else 0

    before = count("Predict", "GRPC")
    both.rpc.predict.Predict(predict_request(TEXTS[:1]), timeout=120)
    refused(both.rpc.predict.Predict, predict_request(TEXTS[:1], name="nope"))
    assert count("Predict", "GRPC") == before + 1
    assert re.search(r':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"} 1\b',
                     both.server.metrics.page().decode())


@pytest.mark.slow
def test_predict_on_serving_examples_and_output_filter(both):
    response = both.rpc.predict.Predict(_examples("serving_examples", output_filter=["score", "label"]), timeout=120)
    assert set(response.outputs) == {"score", "label"} and response.model_spec.signature_name == "serving_examples"
    direct = outputs(both.rpc.predict.Predict(predict_request(TEXTS), timeout=120))
    got = outputs(response)
    np.testing.assert_allclose(got["score"], direct["score"], atol=1e-6)
    assert list(got["label"]) == list(direct["label"])


@pytest.mark.slow
def test_errors_are_tf_servings(both):
    """Every row: TF Serving's status code and text (each row names its source lines)."""
    feed = both.server.model.signature_defs["serving_default"]["inputs"]["text"]["name"]
    mismatches = []
    for method, req, code, details, source in _rows(feed):
        got = refused(getattr(both.rpc.predict, method), req)
        if got != (code, details):
            mismatches.append((method, source, got, (code, details)))
    assert not mismatches
    assert not any("internal error" in line for line in both.logs)


@pytest.mark.slow
def test_metadata_equals_rest(both):
    a = apis()
    response = both.rpc.predict.GetModelMetadata(a.get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=spec(), metadata_field=["signature_def"]), timeout=60)
    assert (response.model_spec.name, response.model_spec.version.value) == (NAME, 1)  # GMM:58-60
    signatures = a.get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    status, rest = request(both.url, f"/v1/models/{NAME}/metadata")
    assert status == 200
    assert json_format.MessageToDict(signatures, preserving_proto_field_name=True,
                                     including_default_value_fields=True)["signature_def"] == \
        rest["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_examples", "__saved_model_init_op"} <= set(signatures.signature_def)


@pytest.mark.slow
def test_model_status(both):
    a, call = apis(), both.rpc.models.GetModelStatus
    response = call(a.get_model_status_pb2.GetModelStatusRequest(model_spec=spec(label="anything")), timeout=60)
    (only,) = response.model_version_status  # the label is ignored (get_model_status_impl.cc:82-107)
    assert (only.version, a.get_model_status_pb2.ModelVersionStatus.State.Name(only.state), only.status.error_code,
            only.status.error_message) == (1, "AVAILABLE", 0, "")
    assert refused(call, a.get_model_status_pb2.GetModelStatusRequest(model_spec=spec(version=7))) == (
        NOT_FOUND, f"Could not find version 7 of model {NAME}")  # get_model_status_impl.cc:88-91
    assert refused(call, a.get_model_status_pb2.GetModelStatusRequest()) == (INVALID, "Missing ModelSpec")


@pytest.mark.slow
def test_latency_grpc_and_rest(both, capsys):
    """Figures for docs/benchmarks: median of 15 Predicts of 1 and 64 texts, each API, same server and texts."""
    import json as json_module

    from serve_helpers import send

    def median_ms(call):
        call()
        times = []
        for _ in range(15):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    figures = {}
    for n in (1, 64):
        texts = (TEXTS * 16)[:n]
        body = json_module.dumps({"instances": texts}).encode()
        figures[n] = (median_ms(lambda: both.rpc.predict.Predict(predict_request(texts), timeout=120)),
                      median_ms(lambda: send(both.url, "POST", PREDICT, body)))
    with capsys.disabled():
        print("\nPredict median ms (gRPC, REST): " + ", ".join(f"{n} texts {g:.1f} / {r:.1f}"
                                                               for n, (g, r) in figures.items()))
    assert all(0 < g < 10_000 and 0 < r < 10_000 for g, r in figures.values())
