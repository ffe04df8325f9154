"""A :predict body -> input tensors, output tensors -> the response body: TF Serving's json_tensor.cc (JT) rules.

Pure (NumPy, no TensorFlow), so the rules are unit-tested without a model. Inputs are given as {name: dtype name}
("string", "float", ...: TF's DataTypeString), outputs as {name: numpy array}.
"""
from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from ops.serving.rest.body import ApiError, JObject, bad
from ops.serving.rest.writer import Writer, decimal, dumps, to_bytes

_NUMPY = {"string": object, "float": np.float32, "double": np.float64, "int32": np.int32, "int64": np.int64,
          "bool": np.bool_}


def _is_b64(v) -> bool:  # IsValBase64Object (JT:304-318)
    return isinstance(v, dict) and len(v) == 1 and isinstance(v.get("b64"), str)


def _is_object(v) -> bool:  # a named-inputs object, not a {"b64": ...} value
    return isinstance(v, dict) and not _is_b64(v)


def _type(v) -> str:  # JsonTypeString (JT:91-108)
    if v is None:
        return "Null"
    if isinstance(v, bool):
        return str(v)
    return {str: "String", list: "Array", JObject: "Object", dict: "Object"}.get(type(v), "Number")


def _b64decode(text: str) -> bytes:
    """absl::Base64Unescape: padding optional, whitespace skipped, the url-safe alphabet refused."""
    data = re.sub(r"[ \t\n\r\f\v]", "", text)
    data = data.rstrip("=") if re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", data) else "!"
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad("Unable to base64 decode") from None


def _scalar(v, dtype: str):
    """AddValueToTensor (JT:236-288), and a base64 object for a string (JT:351-354)."""
    if isinstance(v, dict):
        if dtype != "string":
            raise bad(f"JSON Value: {dumps(v)} Type: Object is not of expected type: {dtype}")
        if not _is_b64(v):
            raise bad(f"JSON Value: {dumps(v)} not formatted correctly for base64 data")
        return _b64decode(v["b64"])
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = {"string": isinstance(v, str), "bool": isinstance(v, bool), "float": number, "double": number,
          "int32": number and isinstance(v, int) and -(1 << 31) <= v < (1 << 31),
          "int64": number and isinstance(v, int) and v < (1 << 63)}.get(dtype)
    if ok is None:
        raise ApiError(501, f"Conversion of JSON Value: {dumps(v)} to type: {dtype}")  # UNIMPLEMENTED
    if not ok:
        raise bad(f"JSON Value: {dumps(v)} Type: {_type(v)} is not of expected type: {dtype}")
    return to_bytes(v) if dtype == "string" else v


def _shape(v) -> list[int]:  # GetDenseTensorShape (JT:295-302): from the first element at each level
    shape = []
    while isinstance(v, list):
        shape.append(len(v))
        v = v[0] if v else None
    return shape


def _fill(v, level: int, shape: list[int], dtype: str, out: list):
    """FillTensorProto (JT:338-382): a dense nested list, every leaf at the same level."""
    if not isinstance(v, list):
        if level != len(shape):
            raise bad(f"JSON Value: {dumps(v)} found at incorrect level: {level + 1} in the JSON DOM. "
                      f"Expected at level: {len(shape)}")
        out.append(_scalar(v, dtype))
        return
    if level >= len(shape):
        raise bad(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(v) != shape[level]:
        raise bad(f"Encountered list at unexpected size: {len(v)} at level: {level} expected size: {shape[level]}")
    for item in v:
        _fill(item, level + 1, shape, dtype, out)


def _tensor(values: list, shape: list[int], dtype: str) -> np.ndarray:
    array = np.empty(len(values), dtype=_NUMPY[dtype])
    array[:] = values
    return array.reshape(shape)


def signature_name(doc: dict) -> str:
    """FillSignature (JT:450-463): '' when absent (the default signature)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise bad(f"JSON Value: {dumps(doc)} not formatted correctly. 'signature_name' key must be a string value.")
    return name


def _instances(rows: list, inputs: dict) -> dict:
    """FillTensorMapFromInstancesList (JT:465-553)."""
    if not isinstance(rows[0], dict) and len(inputs) > 1:
        raise bad("instances is a plain list, but expecting list of objects as multiple input tensors required "
                  "as per tensorinfo_map")
    named, values, shapes = _is_object(rows[0]), {}, {}

    def add(item, name):  # AddInstanceItem (JT:389-417)
        if name not in inputs:
            raise bad(f"JSON object: does not have named input: {name}")
        shape, out = _shape(item), []
        _fill(item, 0, shape, inputs[name], out)
        if name not in shapes:
            shapes[name], values[name] = shape, []
        elif len(out) != _size(shapes[name]):
            raise bad(f"Expecting tensor size: {_size(shapes[name])} but got: {len(out)}")
        elif shape != shapes[name]:
            raise bad(f"Expecting shape [{','.join(map(str, shapes[name]))}] but got: [{','.join(map(str, shape))}]")
        values[name].extend(out)

    for i, elem in enumerate(rows):
        if named:
            if not _is_object(elem):
                raise bad(f"Expecting object but got list at item {i} of input list")
            for key, item in elem.pairs:
                try:
                    add(item, key)
                except Exception as e:
                    raise _wrapped(e, f"Failed to process element: {i} key: {key} of 'instances' list. Error: ")
            if set(elem) != set(inputs):
                raise bad(f"Failed to process element: {i} of 'instances' list. JSON object: {dumps(elem)} keys "
                          f"must be equal to: {','.join(sorted(inputs))}")
        else:
            if _is_object(elem):
                raise bad(f"Expecting value/list but got object at item {i} of input list")
            try:
                add(elem, next(iter(inputs)))
            except Exception as e:
                raise _wrapped(e, f"Failed to process element: {i} of 'instances' list. Error: ")
    # An object that repeats a key (rapidjson keeps both members) adds each value to the same TensorProto;
    # Tensor::FromProto then reads only the first len(rows) * size values (tensorflow/core/framework/tensor.cc
    # FromProtoField: n <= in_n copies the first n), so the later values shift into the next instances.
    return {n: _tensor(v[:len(rows) * _size(shapes[n])], [len(rows)] + shapes[n], inputs[n])
            for n, v in values.items()}


def _size(shape):
    return int(np.prod(shape)) if shape else 1


_CODES = {400: "INVALID_ARGUMENT", 501: "UNIMPLEMENTED"}


def _wrapped(error, prefix):  # the inner Status with its code (Status::ToString), under the outer message
    if not isinstance(error, ApiError):
        return error
    return bad(f"{prefix}{_CODES.get(error.status, 'UNKNOWN')}: {error}")


def _columns(value, inputs: dict) -> dict:
    """FillTensorMapFromInputsMap (JT:555-595): any rank, a scalar included; extra keys ignored."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise bad("inputs is a plain value/list, but expecting an object as multiple input tensors required "
                      "as per tensorinfo_map")
        columns = {next(iter(inputs)): value}
    else:
        columns = {}
        for name in sorted(inputs):
            if name not in value:
                raise bad(f"Missing named input: {name} in 'inputs' object.")
            columns[name] = value[name]
    tensors = {}
    for name, column in columns.items():
        shape, out = _shape(column), []
        _fill(column, 0, shape, inputs[name], out)
        tensors[name] = _tensor(out, shape, inputs[name])
    return tensors


def request_tensors(doc: dict, inputs: dict) -> tuple[str, dict]:
    """(format, {name: array}): "row" for "instances", "columnar" for "inputs" (JT:599-651)."""
    if not inputs:
        raise bad(f"Failed to get input map for signature: {signature_name(doc) or 'DEFAULT'}")
    if "instances" in doc:
        if "inputs" in doc:
            raise bad(f"JSON Value: {dumps(doc)} Not formatted correctly expecting only one of 'inputs' or "
                      "'instances' keys to exist ")
        rows = doc["instances"]
        if not isinstance(rows, list):
            raise bad(f"JSON Value: {dumps(doc)} Expecting 'instances' to be an list/array")
        if not rows:
            raise bad(f"JSON Value: {dumps(doc)} No values in 'instances' array")
        return "row", _instances(rows, inputs)
    if "inputs" in doc:
        return "columnar", _columns(doc["inputs"], inputs)
    raise bad("Missing 'inputs' or 'instances' key")


def _feature_value(v, name: str, kind: str | None) -> str:
    """AddValueToFeature (JT:683-740): one value of a feature -> its kind; one kind per feature."""
    if v is None or isinstance(v, list) or (isinstance(v, dict) and not _is_b64(v)):
        raise bad(f"Feature: {name} has element with unexpected JSON type: {_type(v)}")
    if isinstance(v, (bool, int)) and not isinstance(v, float):
        want = "int64"  # a bool is 1 or 0
    else:
        want = "float" if isinstance(v, float) else "bytes"
    if kind not in (None, want):  # IncompatibleFeatureKindError (JT:660-681) names the feature's kind so far
        raise bad(f"Unexpected element type in feature: {name} expecting type: {kind}")
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1 << 63:
        raise bad(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    if isinstance(v, dict):
        _b64decode(v["b64"])
    return want


def _example(value):
    """MakeExampleFromJsonObject (JT:742-763): an object of features, each a value or a list of values."""
    if not isinstance(value, dict):
        raise bad(f"Example must be JSON object but got JSON {_type(value)}")
    for name, content in getattr(value, "pairs", None) or list(value.items()):
        kind = None
        for v in content if isinstance(content, list) else [content]:
            kind = _feature_value(v, name, kind)


def examples_request(doc: dict) -> str:
    """:classify / :regress bodies, FillClassifyRegressRequestFromJson (JT:765-806): signature_name, an optional
    'context' example, then 'examples', a non-empty list of examples (the text says 'classify' for both verbs).
    Returns the signature name ('' for the default). Checked before the servable is looked up."""
    name = signature_name(doc)
    if "context" in doc:
        _example(doc["context"])
    if "examples" not in doc:
        raise bad(f"JSON Value: {dumps(doc)} When method is classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise bad(f"JSON Value: {dumps(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise bad(f"JSON Value: {dumps(doc)} 'examples' value is an empty array")
    for example in examples:
        _example(example)
    return name


def _values(writer: Writer, array: np.ndarray, as_bytes: bool):
    """AddTensorValues / AddSingleValueAndAdvance (JT:834-919)."""
    if not isinstance(array, np.ndarray):  # an element of an array: bytes, or a NumPy scalar
        array = np.array(array, dtype=object if isinstance(array, bytes) else None)
    if array.ndim:
        writer.start(True)
        for item in array:
            _values(writer, item, as_bytes)
        writer.end()
    elif array.dtype == object or array.dtype.kind == "S":
        raw = bytes(array.item())
        if as_bytes:  # outputs named *_bytes are written as {"b64": ...} (JT:823-867)
            writer.start(False)
            writer.string(b"b64")
            writer.string(base64.b64encode(raw))
            writer.end()
        else:
            writer.string(raw)
    elif array.dtype.kind == "f":
        writer.raw(decimal(float(array), float32=array.dtype == np.float32).encode())
    elif array.dtype.kind == "b":
        writer.raw(b"true" if array else b"false")
    else:
        writer.raw(str(int(array)).encode())


def predict_response(outputs: dict, form: str) -> bytes:
    """MakeRowFormatJsonFromTensors / MakeColumnarFormatJsonFromTensors (JT:921-994). Output keys are sorted
    (TF Serving's order is its protobuf Map's, which is unspecified)."""
    names, writer = sorted(outputs), Writer()
    as_bytes = {n: n.endswith("_bytes") and outputs[n].dtype == object for n in names}
    several = len(names) > 1
    writer.start(False)
    if form == "columnar":
        writer.string(b"outputs")
        if several:
            writer.start(False)
        for n in names:
            if several:
                writer.string(n.encode())
            _values(writer, outputs[n], as_bytes[n])
        if several:
            writer.end()
    else:
        batch = None
        for n in names:
            if not outputs[n].ndim:
                raise bad(f"Tensor name: {n} has no shape information ")
            if batch is not None and outputs[n].shape[0] != batch:
                raise bad(f"Tensor name: {n} has inconsistent batch size: {outputs[n].shape[0]} expecting: {batch}")
            batch = outputs[n].shape[0]
        writer.string(b"predictions")
        writer.start(True)
        for i in range(batch or 0):
            if several:
                writer.start(False)
            writer.single_line = True
            for n in names:
                if several:
                    writer.string(n.encode())
                _values(writer, outputs[n][i], as_bytes[n])
            writer.single_line = False
            if several:
                writer.end()
        writer.end()
    writer.end()
    return bytes(writer.out)
