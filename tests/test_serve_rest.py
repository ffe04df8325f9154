"""`serve`'s pure parts, no model: TF Serving's routing, rapidjson's parse errors and PrettyWriter, the float
text, the tensors a request makes; and negative controls (answers of the old stand-in fail the table)."""
import json

import numpy as np
import pytest

import serve_contract as contract
from components.errors import ConfigError
from ops.serving.rest import body as rest_json
from ops.serving.rest import tensors as rest_tensors
from ops.serving.rest.api import Route, html_page, route
from ops.serving.rest.body import ApiError, parse
from ops.serving.rest.writer import decimal, dumps, error_body
from ops.serving.loaded_model import HTTP_STATUS, _op_message
from pipelines.config_loading import load_config

P = "/v1/models/m:predict"


@pytest.mark.parametrize("method,path,expected", [
    ("POST", P, Route("predict", "m", None, None)),
    ("POST", "/v1/models/m/versions/3:classify", Route("classify", "m", 3, None)),
    ("POST", "/v1/models/m/labels/canary:predict", Route("predict", "m", None, "canary")),
    ("POST", "/v1/models/a%2Fb:predict", Route("predict", "a/b", None, None)),  # decoded after matching
    ("POST", "/v1/models/a+b:predict", Route("predict", "a+b", None, None)),  # curl_easy_unescape: '+' stays
    ("GET", "/v1/models/m/versions/2/metadata", Route("metadata", "m", 2, None)),
    ("GET", "/V1/Models/m/Metadata", Route("status", "m", None, None)),  # (?i) pattern, then == "metadata"
    ("GET", "/v1/models/m?x=1", Route("status", "m?x=1", None, None)),
    ("GET", "/v1/models/m/labels/x", Route("status", "m", None, "x")),
])
def test_routes(method, path, expected):
    assert route(method, path) == expected


@pytest.mark.parametrize("method,path,status,message,body", [
    ("POST", P + "?x=1", 400, "Malformed request: POST " + P + "?x=1", True),
    ("GET", P, 400, "Malformed request: GET " + P, True),
    ("HEAD", "/v1/models/m", 400, "Malformed request: HEAD /v1/models/m", True),
    ("GET", "/v1/models/", 400, "Malformed request: GET /v1/models/", True),
    ("GET", "/v1/models", 400, "Missing model name in request.", True),
    ("GET", "/v1/models/m/versions/9223372036854775808", 400,
     "Failed to convert version: 9223372036854775808 to numeric.", False),
    ("GET", "/v1/models/m/versions/٣", 400, "Malformed request: GET /v1/models/m/versions/٣", True),  # RE2 \d
])
def test_route_errors(method, path, status, message, body):
    with pytest.raises(ApiError) as e:
        route(method, path)
    assert (e.value.status, str(e.value), e.value.body) == (status, message, body)


@pytest.mark.parametrize("body,message", [
    (b"", "JSON Parse error: The document is empty"),
    (b" \n", "JSON Parse error: The document is empty. at offset: 2"),
    (b'{"a":1}x', "JSON Parse error: The document root must not be followed by other values. at offset: 7"),
    (b'{"a":1,}', "JSON Parse error: Missing a name for object member. at offset: 7"),
    (b'{"a" 1}', "JSON Parse error: Missing a colon after a name of object member. at offset: 5"),
    (b'{"a":1 "b":2}', "JSON Parse error: Missing a comma or '}' after an object member. at offset: 7"),
    (b"[1,]", "JSON Parse error: Invalid value. at offset: 3"),
    (b'{"a":tru}', "JSON Parse error: Invalid value. at offset: 8"),
    (b'{"a":"\\x"}', "JSON Parse error: Invalid escape character in string. at offset: 6"),
    (b'{"a":"\\u12g4"}', "JSON Parse error: Incorrect hex digit after \\u escape in string. at offset: 6"),
    (b'{"a":"\\ud800"}', "JSON Parse error: The surrogate pair in string is invalid. at offset: 6"),
    (b'{"a":"abc', "JSON Parse error: Missing a closing quotation mark in string. at offset: 9"),
    (b'{"a":1.}', "JSON Parse error: Miss fraction part in number. at offset: 7"),
    (b'{"a":1e}', "JSON Parse error: Miss exponent in number. at offset: 7"),
    (b'{"a":1e400}', "JSON Parse error: Number too big to be stored in double. at offset: 5"),
    (b'\xef\xbb\xbf{"a":x}', "JSON Parse error: Invalid value. at offset: 8"),  # offsets count the BOM
    (b'["a"]', 'JSON Value: [\n    "a"\n] Is not object'),
])
def test_parse_errors_are_rapidjsons(body, message):
    with pytest.raises(ApiError) as e:
        parse(body)
    assert (e.value.status, str(e.value)) == (400, message)


def test_parse_accepts_what_rapidjson_accepts_and_both_paths_agree():
    body = b'\xef\xbb\xbf{"k": [NaN, -Infinity, 1, 1.5, 18446744073709551616, "\\u00e9\\ud83d\\ude00", "\xff"],' \
           b' "k": 2}\0 trailing bytes after a NUL are not read'
    doc = parse(body)
    assert doc["k"][2:5] == [1, 1.5, 18446744073709551616.0] and doc["k"][5] == "é😀" and len(doc["k"]) == 7
    assert doc.pairs[1] == ("k", 2)  # kept for echoing, as rapidjson's DOM keeps it
    slow = rest_json._Reader(body.split(b"\0")[0], 3).document()
    assert dumps(slow) == dumps(doc)


@pytest.mark.parametrize("value,text", [
    (0.1, "0.1"), (1 / 3, "0.333333343"), (2.0, "2.0"), (1e-5, "1e-05"), (1e10, "1e+10"),
    (123456789.0, "123456792.0"), (0.000756660418, "0.000756660418"), (float("nan"), "NaN"),
    (float("-inf"), "-Infinity")])
def test_floats_as_tf_serving_writes_them(value, text):
    assert decimal(np.float32(value), float32=True) == text


def test_bodies_are_prettywriter_bytes():
    assert error_body('a "b"\n') == b'{\n    "error": "a \\"b\\"\\n"\n}'
    outputs = {"score": np.array([0.5, 0.25], np.float32), "classes": np.array([[b"A", b"\xc3\xa9"]] * 2, object),
               "id_bytes": np.array([b"\x00", b"\x01"], object)}
    row = rest_tensors.predict_response(outputs, "row").decode()
    assert row.startswith('{\n    "predictions": [\n        {\n            "classes": ["A", "é"],\n'
                          '            "id_bytes": {\n                "b64": "AA=="\n            },\n'
                          '            "score": 0.5\n        },\n        {\n')
    assert row.endswith('"score": 0.25\n        }\n    ]\n}')
    columnar = rest_tensors.predict_response({"score": np.array([0.5], np.float32)}, "columnar")
    assert columnar == b'{\n    "outputs": [\n        0.5\n    ]\n}'


def tensors(body, inputs={"text": "string"}):
    return rest_tensors.request_tensors(parse(json.dumps(body).encode()), inputs)


def test_request_tensors_any_rank_and_base64_rules():
    form, t = tensors({"instances": [["a", "b"]]})
    assert form == "row" and t["text"].shape == (1, 2)
    form, t = tensors({"inputs": "a"})
    assert form == "columnar" and t["text"].shape == () and t["text"].item() == b"a"
    assert tensors({"instances": [{"b64": "YW Jj"}, {"b64": "YWI"}]})[1]["text"].tolist() == [b"abc", b"ab"]
    with pytest.raises(ApiError, match="Unable to base64 decode"):
        tensors({"instances": [{"b64": "-_8"}]})  # the url-safe alphabet
    _, t = tensors({"instances": [{"a": "x", "b": 1.5}]}, {"a": "string", "b": "float"})
    assert t["b"].dtype == np.float32 and t["b"].tolist() == [1.5]
    with pytest.raises(ApiError, match="instances is a plain list, but expecting list of objects"):
        tensors({"instances": ["x"]}, {"a": "string", "b": "float"})


def test_negative_control_the_old_readme_example_is_a_400():
    with pytest.raises(ApiError, match="Expecting value/list but got object at item 1 of input list"):
        tensors({"instances": ["How far is Denver from Aspen ?", {"text": "Who wrote Hamlet ?"}]})


@pytest.mark.parametrize("row_id,old_answer", [
    ("GET on predict", (405, {"content-type": "application/json"},
                        b'{"error": "GET is not allowed on /v1/models/transferline:predict; use POST"}')),
    ("outside /v1/", (404, {"content-type": "application/json"}, b'{"error": "Malformed request: GET /v2/..."}')),
    ("no model name", (404, {"content-type": "application/json"}, b'{"error": "Malformed request: GET /v1/models"}')),
    # the right message, written compactly as the old stand-in did: TF Serving pretty-prints
    ("neither key", (400, {"content-type": "application/json"}, b'{"error": "Missing \'inputs\' or \'instances\' key"}')),
])
def test_negative_control_the_old_stand_ins_answers_fail_the_table(row_id, old_answer):
    row = next(r for r in contract.ROWS if r.id == row_id)
    with pytest.raises(AssertionError):
        contract.check_answer(*old_answer, row.tf)


def test_pages_codes_and_op_messages():
    assert html_page(404) == b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n" \
                             b"</BODY></HTML>\n"
    assert (HTTP_STATUS["INVALID_ARGUMENT"], HTTP_STATUS["FAILED_PRECONDITION"], HTTP_STATUS["NOT_FOUND"],
            HTTP_STATUS["RESOURCE_EXHAUSTED"], HTTP_STATUS["UNIMPLEMENTED"]) == (400, 400, 404, 429, 501)

    class OpError:
        message = ("Graph execution error:\n\nDetected at node P/Q defined at (most recent call last):\n<stack traces "
                   "unavailable>\nCould not parse example input, value: 'abc'\n\t [[{{node P/Q}}]] [Op:__inference_1]")
    assert _op_message(OpError) == "Could not parse example input, value: 'abc'\n\t [[{{node P/Q}}]]"


def test_serve_knobs_are_validated():
    for knob in ("max_instances", "predict_chunk", "max_body_bytes"):
        with pytest.raises(ConfigError, match=knob):
            load_config(None, [f"serve.{knob}=0"])
    assert load_config(None, []).serve.listen_before_load is False


def test_a_repeated_key_in_an_instance_adds_both_values_and_the_first_n_are_read():
    # JT:501-511 adds each member to one TensorProto; TF's Tensor::FromProto reads its first n values, so the
    # second value shifts into the next instance (tf.io.parse_tensor, which calls FromProto, agrees)
    _, t = rest_tensors.request_tensors(parse(b'{"instances": [{"text": "a", "text": "b"}]}'), {"text": "string"})
    assert t["text"].tolist() == [b"a"]
    _, t = rest_tensors.request_tensors(parse(b'{"instances": [{"text": "a", "text": "b"}, {"text": "c"}]}'),
                                        {"text": "string"})
    assert t["text"].tolist() == [b"a", b"b"]
    with pytest.raises(ApiError, match="Failed to process element: 0 key: text of 'instances' list. Error: "
                                       "INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"):
        rest_tensors.request_tensors(parse(b'{"instances": [{"text": "a", "text": ["b", "c"]}]}'), {"text": "string"})


@pytest.mark.parametrize("body,message", [
    (b'{"examples": [{"text": "a"}], "context": 5}', "Example must be JSON object but got JSON Number"),
    (b'{"examples": [true]}', "Example must be JSON object but got JSON True"),
    (b'{"examples": [{"n": [1, 1.5]}]}', "Unexpected element type in feature: n expecting type: int64"),
    (b'{"examples": [{"n": [1.5, "a"]}]}', "Unexpected element type in feature: n expecting type: float"),
    (b'{"examples": [{"n": [[1]]}]}', "Feature: n has element with unexpected JSON type: Array"),
    (b'{"examples": [{"n": {"x": 1}}]}', "Feature: n has element with unexpected JSON type: Object"),
    (b'{"examples": [{"n": 9223372036854775808}]}', "Feature: n has uint64_t element. Only int64_t is supported."),
    (b'{"examples": [{"n": {"b64": "-_8"}}]}', "Unable to base64 decode"),
    (b'{"signature_name": 1, "examples": []}',
     "JSON Value: {\n    \"signature_name\": 1,\n    \"examples\": []\n} not formatted correctly. 'signature_name' "
     "key must be a string value."),
])
def test_classify_bodies_are_checked_as_tf_serving_does(body, message):
    with pytest.raises(ApiError) as e:
        rest_tensors.examples_request(parse(body))
    assert (e.value.status, str(e.value)) == (400, message)


def test_classify_bodies_tf_serving_accepts():
    doc = parse(b'{"signature_name": "s", "context": {"c": 1}, "examples": [{"t": ["a", {"b64": "YQ"}], "b": '
                b'[true, 2], "f": [1e3, NaN], "e": []}]}')
    assert rest_tensors.examples_request(doc) == "s"


def test_gzip_bodies_as_tf_serving_reads_them():
    import gzip
    import zlib

    from ops.serving.rest.body import gunzip, is_gzip

    body = b'{"instances": ["a"]}'
    assert [is_gzip(e) for e in ("gzip", "x-gzip", "gzip, identity", "GZIP", "deflate", "")] == \
        [True, True, True, False, False, False]  # absl::StrContains: case-sensitive (EVR:262-267)
    assert parse(gunzip(gzip.compress(body), 100))["instances"] == ["a"]
    assert gunzip(gzip.compress(body), 10) is None  # past the limit (serve.max_body_bytes)
    for corrupt in (b"\x1f\x8bnot gzip", gzip.compress(body)[:-6], zlib.compress(body), gzip.compress(body) + b"x"):
        assert gunzip(corrupt, 100) == b""  # TF Serving passes an empty body on (EVR:245-258)
    with pytest.raises(ApiError, match="^JSON Parse error: The document is empty$"):
        parse(gunzip(b"\x1f\x8bnot gzip", 100))


def test_a_sparse_output_cannot_be_fetched_and_417_is_libevents_page():
    from ops.serving.loaded_model import unfetchable_output

    dense = {"name": "StatefulPartitionedCall_7:8", "dtype": "DT_STRING"}
    sparse = {"name": "", "coo_sparse": {"values_tensor_name": "StatefulPartitionedCall_7:6"}, "dtype": "DT_FLOAT"}
    assert unfetchable_output({"outputs": {"raw_text": dense}}) is None
    assert unfetchable_output({"outputs": {"raw_text": dense, "ngram_weights": sparse}}) == ":0"
    assert html_page(417) == b"<HTML><HEAD>\n<TITLE>417 Expectation Failed</TITLE>\n</HEAD><BODY>\n" \
                             b"<H1>Expectation Failed</H1>\n</BODY></HTML>\n"


@pytest.mark.slow
def test_a_tensor_of_another_rank_runs_as_a_session_runs_it(tmp_path):
    """A signature declaring text[None] fed a [1, 2] tensor: TF Serving's Session computes with the fed shape
    (two rows); the eager runtime, trusting [None], let Grappler drop the reshape pair (one row of two)."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2

    from ops.serving.loaded_model import run

    class Counter(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def serve(self, text):
            flat = tf.reshape(tf.reshape(text, [-1, 1]), [-1])
            n = tf.shape(flat)[0]
            return {"ones": tf.math.unsorted_segment_sum(tf.ones_like(flat, tf.float32), tf.range(n), n)}

    module = Counter()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    fn = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    texts = np.array([[b"a", b"b"]], dtype=object)
    plain = fn._call_flat([tf.constant(texts)], fn.captured_inputs)["ones"].numpy()
    assert plain.shape == (1, 2)  # the eager runtime's answer, which run() must not give
    with tf.compat.v1.Session(graph=tf.Graph()) as session:  # TF Serving's runtime on the same SavedModel
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(tmp_path))
        sig = meta.signature_def["serving_default"]
        feed = config_pb2.CallableOptions(feed=[sig.inputs["text"].name], fetch=[sig.outputs["ones"].name])
        expected = session._make_callable_from_options(feed)(texts)[0]  # as a C++ feed: no Python shape check
    assert expected.tolist() == [1.0, 1.0]
    assert run(fn, {"text": texts}, 256)["ones"].tolist() == expected.tolist()
    assert run(fn, {"text": texts[0]}, 1)["ones"].tolist() == [1.0, 1.0]  # rank 1, in chunks: unchanged
