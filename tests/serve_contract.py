"""The contract table: what TF Serving 2.16.1 answers each request, and where its source says so.

One row per case. `tf` is TF Serving's answer: (status, answer), the answer being an exact error message
(`{"error": ...}`, pretty-printed), `Prefix(...)` (the message starts so), `EMPTY` (no body), `HTML` (libevent's
error page) or `Ok(check)` (200; check(JSON) must hold). Sources are tensorflow/serving @ 2.16.1 (0d726954):
HRA = model_servers/http_rest_api_handler.cc, HRU = http_rest_api_util.cc, HS = http_server.cc,
JT = util/json_tensor.cc, EVR/EVS = util/net_http/server/internal/evhttp_{request,server}.cc, GMS =
model_servers/get_model_status_impl.cc, CL/RG/PU = servables/tensorflow/{classifier,regressor,predict_util}.cc;
rapidjson 1.1.0 / libevent 2.1.8 (http.c) as pinned in workspace.bzl.
A deviation row says what the stand-in answers instead (`ours`) and why (`deviation`): the test asserts `ours`.
"""
from __future__ import annotations

import base64
import gzip
import json
import zlib
from typing import Callable, NamedTuple

P = "/v1/models/transferline:predict"
C, R = "/v1/models/transferline:classify", "/v1/models/transferline:regress"
EMPTY, HTML = "<empty>", "<html>"


class Prefix(str):
    pass


class Ok(NamedTuple):
    check: Callable = lambda body: True


class Row(NamedTuple):
    id: str
    method: str
    path: str
    body: object  # bytes as is; anything else JSON-encoded; None: no body
    tf: tuple  # (status, answer)
    source: str
    headers: dict = {}
    deviation: str = ""
    ours: tuple = ()


def n_predictions(n):
    return lambda body: len(body["predictions"]) == n


def example(text: str) -> dict:
    """{"b64": a serialized tf.Example with feature text}, built by hand (protobuf wire format, no TF)."""
    t = text.encode()
    feature = b"\x0a" + bytes([len(t) + 2]) + b"\x0a" + bytes([len(t)]) + t  # Feature{bytes_list{value}}
    entry = b"\x0a\x04text\x12" + bytes([len(feature)]) + feature            # map<string, Feature> entry
    features = b"\x0a" + bytes([len(entry)]) + entry
    return {"b64": base64.b64encode(b"\x0a" + bytes([len(features)]) + features).decode()}


MALFORMED = "Malformed request: {} {}"
GZIP_OFF = ("Content-Encoding gzip is off in this development stand-in (serve.gzip = false; TF Serving decompresses "
            "it)")
ROWS = [
    # --- routing and methods -------------------------------------------------------------------------------------
    Row("query on predict", "POST", P + "?x=1", {"instances": ["a"]},
        (400, MALFORMED.format("POST", P + "?x=1")), "EVR:106-117,136-138; HRU:31-32,99-102; HRA:74-75"),
    Row("query on status", "GET", "/v1/models/transferline?x=1", None,
        (404, "Could not find any versions of model transferline?x=1"), "EVR:106-117; HRU:33-34; GMS:96-100"),
    Row("GET on predict", "GET", P, None, (400, MALFORMED.format("GET", P)), "HRU:103-106; HRA:74-75,97-105"),
    Row("PUT", "PUT", "/v1/models/transferline", b"{}", (400, MALFORMED.format("PUT", "/v1/models/transferline")),
        "HRU:99-107 (neither POST nor GET); HRA:74-75"),
    Row("DELETE", "DELETE", "/v1/models/transferline", None,
        (400, MALFORMED.format("DELETE", "/v1/models/transferline")), "HRA:74-75"),
    Row("PATCH", "PATCH", P, {"instances": ["a"]}, (400, MALFORMED.format("PATCH", P)), "EVS:114-117; HRA:74-75"),
    Row("POST on status", "POST", "/v1/models/transferline", {"instances": ["a"]},
        (400, MALFORMED.format("POST", "/v1/models/transferline")), "HRU:31-32 (no verb); HRA:74-75"),
    Row("trailing slash", "GET", "/v1/models/transferline/", None,
        (400, MALFORMED.format("GET", "/v1/models/transferline/")), "HRU:33-34; HRA:74-75"),
    Row("bad version", "GET", "/v1/models/transferline/versions/x", None,
        (400, MALFORMED.format("GET", "/v1/models/transferline/versions/x")), "HRU:33-34; HRA:74-75"),
    Row("no model name", "GET", "/v1/models", None, (400, "Missing model name in request."), "HRA:186-189"),
    Row("version beyond int64", "GET", "/v1/models/transferline/versions/99999999999999999999", None,
        (400, EMPTY), "HRU:114-119 returned by TF_RETURN_IF_ERROR before MakeJsonFromStatus (HRA:79-81,106)"),
    Row("outside /v1/", "GET", "/v2/models/transferline", None, (404, HTML), "HS:140-149; EVS:175-177"),
    Row("root", "GET", "/", None, (404, HTML), "HS:140-149; EVS:175-177"),
    Row("HEAD under /v1/", "HEAD", "/v1/models/transferline", None, (400, EMPTY),
        "HRA:74-75 (HEAD is neither POST nor GET); a HEAD answer has no body"),
    Row("HEAD outside /v1/", "HEAD", "/", None, (404, EMPTY), "HS:140-149; EVS:175-177; no body on HEAD"),
    Row("OPTIONS with Origin", "OPTIONS", P, None, (200, EMPTY), "HS:170-173",
        headers={"Origin": "http://localhost:3000"}),
    Row("OPTIONS without Origin", "OPTIONS", P, None, (400, EMPTY), "HS:174-177 (FAILED_PRECONDITION, HS:68-69)"),
    Row("OPTIONS outside /v1/", "OPTIONS", "/x", None, (404, HTML), "HS:140-149", headers={"Origin": "http://a"}),
    Row("TRACE", "TRACE", "/v1/models/transferline", None, (501, HTML), "EVS:114-117 (not allowed: libevent 501)"),
    Row("label on predict", "POST", "/v1/models/transferline/labels/stable:predict", {"instances": ["a"]},
        (400, "Unrecognized servable version label: stable"), "model_servers/server_core.cc:839-840"),
    Row("label on metadata", "GET", "/v1/models/transferline/labels/stable/metadata", None,
        (400, "Unrecognized servable version label: stable"), "server_core.cc:839-840"),
    Row("label on status (ignored)", "GET", "/v1/models/transferline/labels/stable", None,
        (200, Ok(lambda b: any(s["state"] == "AVAILABLE" for s in b["model_version_status"]))), "GMS:82-107 (version only)"),
    Row("path case", "GET", "/V1/MODELS/transferline", None,
        (200, Ok(lambda b: "model_version_status" in b)), "HRU:33 ((?i)); HS dispatcher (?i)/v1/.*"),
    Row("verb case", "POST", "/v1/models/transferline:PREDICT", {"instances": ["a"]},
        (400, MALFORMED.format("POST", "/v1/models/transferline:PREDICT")), "HRA:85-96 (method compared as is)"),
    Row("METADATA is status", "GET", "/v1/models/transferline/METADATA", None,
        (200, Ok(lambda b: "model_version_status" in b)), "HRA:97-98 (== \"metadata\")"),
    Row("name URL-decoded", "POST", "/v1/models/trans%66erline:predict", {"instances": ["a"]},
        (200, Ok(n_predictions(1))), "HRU:108-113"),
    # --- lookup, and the order of checks --------------------------------------------------------------------------
    Row("unknown model", "POST", "/v1/models/other:predict", {"instances": ["a"]},
        (404, "Servable not found for request: Latest(other)"), "core/basic_manager.cc:132"),
    Row("unknown version", "POST", "/v1/models/transferline/versions/7:predict", {"instances": ["a"]},
        (404, "Servable not found for request: Specific(transferline, 7)"), "core/basic_manager.cc:132"),
    Row("unknown model, bad JSON", "POST", "/v1/models/other:predict", b'{"instances": ["a"',
        (400, "JSON Parse error: Missing a comma or ']' after an array element. at offset: 18"),
        "JT:607 (parse) before JT:612 (lookup)"),
    Row("unknown model, bad signature_name", "POST", "/v1/models/other:predict", {"signature_name": 5},
        (400, 'JSON Value: {\n    "signature_name": 5\n} not formatted correctly. \'signature_name\' key must be a '
         "string value."), "JT:608 before JT:612; JT:226-230"),
    Row("unknown model status", "GET", "/v1/models/other", None,
        (404, "Could not find any versions of model other"), "GMS:98-100"),
    Row("unknown version status", "GET", "/v1/models/transferline/versions/7", None,
        (404, "Could not find version 7 of model transferline"), "GMS:88-91"),
    Row("unknown model metadata", "GET", "/v1/models/other/metadata", None,
        (404, "Servable not found for request: Latest(other)"), "HRA:223-224; basic_manager.cc:132"),
    Row("unknown signature", "POST", P, {"signature_name": "nope", "instances": ["a"]},
        (400, 'Serving signature name: "nope" not found in signature def'), "HRA:235-238"),
    # --- JSON parsing -----------------------------------------------------------------------------------------------
    Row("empty body", "POST", P, b"", (400, "JSON Parse error: The document is empty"), "JT:420-422"),
    Row("blank body", "POST", P, b" ", (400, "JSON Parse error: The document is empty. at offset: 1"),
        "JT:431-435; rapidjson reader.h kParseErrorDocumentEmpty"),
    Row("truncated", "POST", P, b'{"instances": ["a"',
        (400, "JSON Parse error: Missing a comma or ']' after an array element. at offset: 18"), "JT:431-435"),
    Row("trailing data", "POST", P, b'{"instances": ["a"]}x',
        (400, "JSON Parse error: The document root must not be followed by other values. at offset: 20"),
        "JT:431-435"),
    Row("bare word", "POST", P, b'{"instances": [a]}', (400, "JSON Parse error: Invalid value. at offset: 15"),
        "JT:431-435"),
    Row("not an object", "POST", P, b'["a"]', (400, 'JSON Value: [\n    "a"\n] Is not object'), "JT:444-446"),
    Row("integer too big for a double", "POST", P, b'{"instances": [' + b"9" * 400 + b"]}",
        (400, "JSON Parse error: Number too big to be stored in double. at offset: 15"),
        "JT:431-435; rapidjson 1.1.0 reader.h:1231-1236 (at the number's start offset)"),
    Row("UTF-8 BOM", "POST", P, b'\xef\xbb\xbf{"instances": ["a"]}', (200, Ok(n_predictions(1))),
        "JT:426-428 (EncodedInputStream<UTF8> skips the BOM)"),
    Row("duplicate key: first wins", "POST", P, b'{"instances": ["a", "b"], "instances": 5}',
        (200, Ok(n_predictions(2))), "JT:621 (FindMember: the first)"),
    Row("duplicate key in an instance: the first", "POST", P, b'{"instances": [{"text": "a", "text": "b"}]}',
        (200, Ok(n_predictions(1))), "JT:501-511 (each member added to one TensorProto); TF tensor.cc FromProtoField "
        "(reads the first n values)"),
    Row("no Content-Length", "POST", P, None, (400, "JSON Parse error: The document is empty"),
        "libevent http.c evhttp_get_body: no length, not chunked = no body; JT:420-422",
        headers={"Connection": "close", "Content-Length": None}),
    Row("chunked body", "POST", P, [b'{"instances": ', b'["a"]}'], (200, Ok(n_predictions(1))),
        "HS:156-160 (ReadRequestBytes until done)"),
    Row("Expect other than 100-continue", "POST", P, {"instances": ["a"]}, (417, HTML),
        "libevent http.c:2203-2225 (evhttp_have_expect 574-587: HTTP/1.1, a body, not 100-continue)",
        headers={"Expect": "later"}),
    Row("Expect: 100-continue", "POST", P, {"instances": ["a"]}, (200, Ok(n_predictions(1))), "http.c:2204-2220",
        headers={"Expect": "100-Continue"}),
    Row("Expect on a GET (no body)", "GET", "/v1/models/transferline", None,
        (200, Ok(lambda b: "model_version_status" in b)), "http.c:2171-2176 (a GET has no body: not checked)",
        headers={"Expect": "later"}),
    Row("deflate body is not decoded", "POST", P, zlib.compress(b'{"instances": ["a"]}'),
        (400, "JSON Parse error: Invalid value. at offset: 0"), "EVR:262-267 (only a Content-Encoding containing "
        "\"gzip\" is inflated); JT:431-435", headers={"Content-Encoding": "deflate"}),
    Row("GZIP in capitals is not decoded", "POST", P, gzip.compress(b'{"instances": ["a"]}'),
        (400, "JSON Parse error: Invalid value. at offset: 0"), "EVR:265 (absl::StrContains: case-sensitive)",
        headers={"Content-Encoding": "GZIP"}),
    # --- instances / inputs ---------------------------------------------------------------------------------------
    Row("instances and inputs", "POST", P, {"instances": ["a"], "inputs": ["a"]},
        (400, 'JSON Value: {\n    "instances": [\n        "a"\n    ],\n    "inputs": [\n        "a"\n    ]\n} '
              "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "), "JT:623-628"),
    Row("empty instances", "POST", P, {"instances": []},
        (400, 'JSON Value: {\n    "instances": []\n} No values in \'instances\' array'), "JT:633-636"),
    Row("instances not a list", "POST", P, {"instances": "a"},
        (400, 'JSON Value: {\n    "instances": "a"\n} Expecting \'instances\' to be an list/array'), "JT:629-632"),
    Row("neither key", "POST", P, {"signature_name": "serving_default"},
        (400, "Missing 'inputs' or 'instances' key"), "JT:650"),
    Row("a number", "POST", P, {"instances": ["a", 5]},
        (400, "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 5 Type: "
              "Number is not of expected type: string"), "JT:529-532; JT:209-213,257-259"),
    Row("object then value", "POST", P, {"instances": [{"text": "a"}, "b"]},
        (400, "Expecting object but got list at item 1 of input list"), "JT:498-500"),
    Row("value then object", "POST", P, {"instances": ["a", {"text": "b"}]},
        (400, "Expecting value/list but got object at item 1 of input list"), "JT:521-524"),
    Row("wrong key", "POST", P, {"instances": [{"txt": "a"}]},
        (400, "Failed to process element: 0 key: txt of 'instances' list. Error: INVALID_ARGUMENT: JSON object: "
              "does not have named input: txt"), "JT:394-397,506-511"),
    Row("extra key", "POST", P, {"instances": [{"text": "a", "lang": "en"}]},
        (400, "Failed to process element: 0 key: lang of 'instances' list. Error: INVALID_ARGUMENT: JSON object: "
              "does not have named input: lang"), "JT:503-511"),
    Row("bad base64", "POST", P, {"instances": [{"b64": "not base64!"}]},
        (400, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Unable to base64 decode"),
        "JT:329-333"),
    Row("unpadded base64", "POST", P, {"instances": [{"b64": "V2hvIHdyb3RlIEhhbWxldCA"}]},
        (200, Ok(n_predictions(1))), "JT:329 absl::Base64Unescape (padding optional)"),
    Row("nested list: another rank", "POST", P, {"instances": [["a", "b"]]}, (200, Ok(n_predictions(2))),
        "JT:389-417 (any rank); servables/tensorflow/predict_util.cc:119-130 (no shape check)"),
    Row("two texts in one instance", "POST", P, {"instances": [["Who is it ?", "Where is it ?"]]},
        (200, Ok(n_predictions(2))), "JT:389-417; PU:119-130; a TF1 Session (TF Serving's runtime) on the fine_tune "
        "and head models answers 2 predictions: the signature reshapes its input to [-1, 1] (components/model.py)"),
    Row("inconsistent sizes", "POST", P, {"instances": [["a"], ["a", "b"]]},
        (400, "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 1 "
              "but got: 2"), "JT:408-410"),
    Row("inconsistent shapes", "POST", P, {"instances": [["a"], "b"]},
        (400, "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting shape [1] but "
              "got: []"), "JT:411-414,185-197"),
    Row("ragged nesting", "POST", P, {"instances": [["a", ["b"]]]},
        (400, "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: Encountered list at "
              "unexpected level: 1 expected < 1"), "JT:362-366"),
    Row("columnar scalar", "POST", P, {"inputs": "a"},
        (200, Ok(lambda b: b["outputs"]["label"] and len(b["outputs"]["score"]) == 1)), "JT:563-575"),
    Row("columnar named, extra key", "POST", P, {"inputs": {"text": ["a"], "other": 1}},
        (200, Ok(lambda b: len(b["outputs"]["score"]) == 1)), "JT:577-592 (only the inputs are read)"),
    Row("columnar missing input", "POST", P, {"inputs": {"txt": ["a"]}},
        (400, "Missing named input: text in 'inputs' object."), "JT:580-582"),
    Row("not a tf.Example", "POST", P, {"signature_name": "serving_examples", "instances": [{"b64": "YWJj"}]},
        (400, Prefix("Could not parse example input, value: 'abc'")),
        "the op's Status as is (HS:187); its [[{{node}}]] suffix is not compared: the node path differs between "
        "a Session and an eager call"),
    Row("transform_features without the label", "POST", P,
        {"signature_name": "transform_features", "instances": [example("Who is it ?")]},
        (400, Prefix("Name: <unknown>, Feature: label (data type: string) is required but could not be found.")),
        "the op's Status as is (HS:187), as for a tf.Example that does not parse. The default model's transform "
        "features are dense now (no n-grams unless wide_deep can be chosen), so the sparse-output refusal "
        "(PU:154-159) is not reachable on it"),
    Row("init op signature", "POST", P, {"signature_name": "__saved_model_init_op", "instances": ["a"]},
        (400, "Failed to get input map for signature: __saved_model_init_op"), "HRA:228-241 (found); JT:612-616"),
    Row(":classify", "POST", C, {"examples": [{"text": "a"}]},
        (400, "Expected one or two output Tensors, found 4"), "CL:189-193"),
    Row(":regress", "POST", R, {"examples": [{"text": "a"}]}, (400, "Expected one output Tensor."), "RG:183-186"),
    Row(":classify without examples", "POST", C, {},
        (400, "JSON Value: {} When method is classify, key 'examples' is expected and was not found"), "JT:783-788"),
    Row(":regress without examples", "POST", R, {"instances": ["a"]},
        (400, 'JSON Value: {\n    "instances": [\n        "a"\n    ]\n} When method is classify, key \'examples\' '
              "is expected and was not found"), "JT:783-788 (the same text for regress)"),
    Row(":classify examples not a list", "POST", C, {"examples": {"text": "a"}},
        (400, 'JSON Value: {\n    "examples": {\n        "text": "a"\n    }\n} Expecting \'examples\' value to be an '
              "list/array"), "JT:789-793"),
    Row(":classify empty examples", "POST", C, {"examples": []},
        (400, 'JSON Value: {\n    "examples": []\n} \'examples\' value is an empty array'), "JT:794-797"),
    Row(":classify a string example", "POST", C, {"examples": ["a"]},
        (400, "Example must be JSON object but got JSON String"), "JT:744-747"),
    Row(":classify a null feature", "POST", C, {"examples": [{"text": None}]},
        (400, "Feature: text has element with unexpected JSON type: Null"), "JT:687-690"),
    Row(":classify mixed feature kinds", "POST", C, {"examples": [{"text": ["a", 1]}]},
        (400, "Unexpected element type in feature: text expecting type: bytes"), "JT:660-681,726-729"),
    Row(":classify unknown signature", "POST", C, {"signature_name": "nope", "examples": [{"text": "a"}]},
        (400, "No signature was found with the name: nope"), "CL:151-161"),
    Row(":regress unknown signature", "POST", R, {"signature_name": "nope", "examples": [{"text": "a"}]},
        (400, "No signature was found with the name: nope"), "RG:146-155"),
    Row(":classify init op", "POST", C, {"signature_name": "__saved_model_init_op", "examples": [{"text": "a"}]},
        (400, "Expected one input Tensor."), "CL:169-170,185-188 (method-name check off, its default)"),
    Row(":classify unknown model, no examples", "POST", "/v1/models/other:classify", {},
        (400, "JSON Value: {} When method is classify, key 'examples' is expected and was not found"),
        "HRA:122 (the body) before classification_service.cc:53 (the servable)"),
    Row(":classify unknown model", "POST", "/v1/models/other:classify", {"examples": [{"text": "a"}]},
        (404, "Servable not found for request: Latest(other)"), "classification_service.cc:53"),
    Row("tf.Example by b64", "POST", "/v1/models/transferline/versions/1:predict",
        {"signature_name": "serving_examples", "instances": [example("Who wrote Hamlet ?")]},
        (200, Ok(n_predictions(1))), "JT:304-335"),
    # --- deliberate deviations: the stand-in stays safe on a small machine -----------------------------------------
    Row("body over serve.max_body_bytes", "POST", P, {"instances": ["x" * 5000]}, (200, Ok(n_predictions(1))),
        "no body limit in TF Serving (libevent's default, never set)",
        deviation="a small machine: bodies are held in memory (serve.max_body_bytes)",
        ours=(400, "Request body exceeds the limit of 4096 bytes (serve.max_body_bytes, a protection of the "
                   "development stand-in; TF Serving has no such limit)")),
    Row("instances over serve.max_instances", "POST", P, {"instances": ["a"] * 51}, (200, Ok(n_predictions(51))),
        "no instance limit in TF Serving",
        deviation="memory grows ~120 KB per instance in flight (serve.max_instances)",
        ours=(400, "Request has 51 instances; this server answers at most 50 per request (serve.max_instances, a "
                   "protection of the development stand-in; TF Serving has no such limit). Send them in several "
                   "requests.")),
    Row("gzip body", "POST", P, "gzip", (200, Ok(n_predictions(1))), "libevent/TF Serving decompress gzip bodies",
        headers={"Content-Encoding": "gzip"}, deviation="a small body can inflate to gigabytes (serve.gzip)",
        ours=(400, GZIP_OFF)),
    Row("x-gzip body", "POST", P, "gzip", (200, Ok(n_predictions(1))), "EVR:262-267 (a Content-Encoding containing "
        "\"gzip\")", headers={"Content-Encoding": "x-gzip"}, deviation="as gzip (serve.gzip)", ours=(400, GZIP_OFF)),
    Row("corrupt gzip body", "POST", P, b"\x1f\x8bnot gzip", (400, "JSON Parse error: The document is empty"),
        "EVR:245-258 (a failed inflate passes an empty body on); JT:420-422", headers={"Content-Encoding": "gzip"},
        deviation="as gzip (serve.gzip); with serve.gzip = true the same as TF Serving (tests/test_serve_rest.py)",
        ours=(400, GZIP_OFF)),
]


def check_answer(status, headers, raw, expected):
    """One answer against a contract row's (status, answer)."""
    code, answer = expected
    assert status == code, raw[:500]
    if answer == EMPTY:
        assert raw == b""
    elif answer == HTML:  # libevent's evhttp_send_error page
        phrase = {404: "Not Found", 417: "Expectation Failed", 501: "Not Implemented"}[code]
        assert headers["content-type"].startswith("text/html") and raw.decode() == (
            f"<HTML><HEAD>\n<TITLE>{code} {phrase}</TITLE>\n</HEAD><BODY>\n<H1>{phrase}</H1>\n</BODY></HTML>\n")
    elif isinstance(answer, Ok):
        assert headers["content-type"] == "application/json" and answer.check(json.loads(raw)), raw[:500]
    elif isinstance(answer, Prefix):
        assert json.loads(raw)["error"].startswith(answer), raw[:500]
    else:  # TF Serving's error body: {"error": ...}, pretty-printed with 4 spaces (JT:1075-1085)
        assert headers["content-type"] == "application/json"
        assert raw.decode() == '{\n    "error": ' + json.dumps(answer, ensure_ascii=False) + "\n}"


def encode(body):
    if body is None or isinstance(body, (bytes, list)):
        return body
    if body == "gzip":
        import gzip
        return gzip.compress(b'{"instances": ["a"]}')
    return json.dumps(body).encode()


def counts():
    deviations = sum(1 for r in ROWS if r.deviation)
    return len(ROWS) - deviations, deviations
