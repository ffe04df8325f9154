"""The contract table (tests/serve_contract.py) and the README's examples, against the stand-in on the slice
model: each answer as TF Serving 2.16.1 gives it (status, body bytes), or the row's listed deviation."""
import json
import os
import re

import numpy as np
import pytest

import serve_contract as contract
from conftest import REPO
from serve_contract import check_answer
from serve_helpers import model_dir, send, served, served_version  # noqa: F401  (fixtures)


@pytest.mark.slow
@pytest.mark.parametrize("row", contract.ROWS, ids=[("DEVIATION: " if r.deviation else "") + r.id
                                                    for r in contract.ROWS])
def test_contract_table(served, row):
    status, headers, raw = send(served.url, row.method, row.path, contract.encode(row.body), row.headers)
    check_answer(status, headers, raw, row.ours or row.tf)
    assert served_version(served.url) is not None  # the server goes on


def readme_requests():
    """The curl examples of README "Serving locally": (path, body or None)."""
    text = open(os.path.join(REPO, "README.md")).read()
    section = text[text.index("## Serving locally"):text.index("## Why transfer learning")]
    for command in re.findall(r"curl (.*?)localhost:8501(\S+)", section.replace("\\\n", " "), re.S):
        data = re.search(r"-d '([^']*)'", command[0])
        yield command[1], data.group(1) if data else None


@pytest.mark.slow
def test_readme_examples_are_answered_and_formatted_as_tf_serving(served):
    examples = list(readme_requests())
    assert len(examples) >= 5
    for path, data in examples:
        if data is not None:
            data = data.replace('"<serialized tf.Example>"', json.dumps(contract.example("Who wrote Hamlet ?")["b64"]))
        status, headers, raw = send(served.url, "POST" if data else "GET", path.replace("<v>", "1"),
                                    None if data is None else data.encode())
        assert status == 200, (path, data, raw[:300])
        body = json.loads(raw)
        if "predictions" in body or "outputs" in body:
            # Pretty-printed as rapidjson's PrettyWriter; each float as %.6g if it reads back, else %.9g (JT:120-166)
            assert raw.startswith(b'{\n    "predictions": [\n        {\n            "classes": ["' if "predictions"
                                  in body else b'{\n    "outputs": {\n        "classes": [\n            [\n')
            for token in re.findall(rb"(?<=[\[ ])-?[0-9][0-9.e+-]*", raw):
                assert token.decode() == tf_serving_float(np.float32(token.decode())), token


def tf_serving_float(value):
    """JT:134-158, written out here apart from ops/rest_json.decimal: %.6g when it reads back, else %.9g."""
    text = "%.6g" % value
    if np.float32(text) != value:
        text = "%.9g" % value
    return text if "." in text or "e" in text else text + ".0"


def test_contract_table_counts():
    matching, deviations = contract.counts()
    assert matching >= 85 and deviations == 5
