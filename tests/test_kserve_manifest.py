"""`transferline kserve`'s InferenceService against KServe's own CRD schema (v0.20.0; tests/data/*.source.txt).

No cluster here: the manifest is schema-checked, never applied. The CRD's openAPIV3Schema does not forbid fields
it does not list (Kubernetes prunes them); `kubectl apply`'s default `--validate=strict` refuses them instead
(server-side field validation: `unknown field "..."`). `strict()` adds that: every object with listed properties
gets additionalProperties: false, except those marked x-kubernetes-preserve-unknown-fields (only `status` is).
Not checked: metadata (the CRD says only `type: object`; the API server checks ObjectMeta), KServe's webhooks
(they need a cluster) and whatever Knative and TF Serving do with it. Unit tier: no TensorFlow.
"""
from __future__ import annotations

import copy
import gzip
import json
import os

import jsonschema
import pytest
import yaml

from conftest import REPO
from ops import cli
from ops.kubeflow import kserve
from pipelines.config_loading import load_config

SCHEMA = os.path.join(REPO, "tests", "data", "kserve_inferenceservice_v1beta1.schema.json.gz")


def crd_schema() -> dict:
    with gzip.open(SCHEMA, "rt", encoding="utf-8") as f:
        return json.load(f)


def strict(schema):
    """kubectl's --validate=strict on top of the CRD: unlisted fields are errors, not pruned."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: {name: strict(s) for name, s in v.items()} if k == "properties"
           else strict(v) if k in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "not") else v
           for k, v in schema.items()}
    if schema.get("properties") and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def schemas():
    raw = crd_schema()
    # OpenAPI v3.0 schemas are JSON-Schema draft 4 in substance; x-kubernetes-* and format are ignored here.
    return jsonschema.Draft4Validator(raw), jsonschema.Draft4Validator(strict(raw))


def errors(validator, doc) -> list[str]:
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc))


def config(tmp_path, *overrides):
    return load_config(None, [f"paths.work_dir={tmp_path}", *overrides])


def test_checked_in_manifest_is_current(tmp_path):
    fresh = kserve.write_manifest(config(tmp_path), canary_percent=10)  # what `make kserve` runs
    assert fresh == str(tmp_path / "kubeflow" / "inferenceservice.yaml")  # the default: beside the compiled IR
    with open(os.path.join(REPO, "kubeflow", "inferenceservice.yaml"), "rb") as f, open(fresh, "rb") as g:
        assert f.read() == g.read(), "kubeflow/inferenceservice.yaml is stale: run `make kserve` and commit it"


def test_the_crd_copy_is_what_kserve_v0_20_ships(schemas):
    raw = crd_schema()
    predictor = raw["properties"]["spec"]["properties"]["predictor"]["properties"]
    assert predictor["canaryTrafficPercent"] == {"format": "int64", "type": "integer"}
    assert predictor["model"]["properties"]["modelFormat"]["required"] == ["name"]
    assert "tensorflow" in predictor  # the older form, still accepted (and rewritten by the webhook)
    assert raw["properties"]["status"].get("x-kubernetes-preserve-unknown-fields") is True


@pytest.mark.parametrize("overrides, percent", [
    ((), None), ((), 10), (("kubeflow.namespace=team-a", "kubeflow.canary_traffic_percent=100"), None),
    (("kubeflow.serving_dir=pvc://models/transferline/serving",), 0)])
def test_manifest_is_valid_against_kserve_crd(tmp_path, schemas, overrides, percent):
    raw, strict_ = schemas
    doc = kserve.manifest(config(tmp_path, *overrides), percent)
    assert errors(raw, doc) == [] and errors(strict_, doc) == []
    with open(kserve.write_manifest(config(tmp_path, *overrides), canary_percent=percent), encoding="utf-8") as f:
        assert yaml.safe_load(f) == doc  # what is written parses back to it (2.16.1 stays a string)


def test_manifest_serves_the_pushed_models_with_tf_serving_2_16_1(tmp_path):
    doc = kserve.manifest(config(tmp_path, "kubeflow.serving_dir=gs://b/tl/serving", "serve.model_name=trec-q",
                                 "kubeflow.canary_traffic_percent=25"))
    assert doc["metadata"] == {"name": "trec-q", "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}}
    assert doc["spec"]["predictor"] == {"canaryTrafficPercent": 25, "model": {
        "modelFormat": {"name": "tensorflow", "version": "2"}, "runtime": "kserve-tensorflow-serving",
        "runtimeVersion": "2.16.1", "storageUri": "gs://b/tl/serving"}}
    plain = kserve.manifest(config(tmp_path), 0)  # 0 = no canary: no field, no annotation
    assert "canaryTrafficPercent" not in plain["spec"]["predictor"] and "annotations" not in plain["metadata"]


@pytest.mark.parametrize("break_it, expected, raw_catches", [
    # the API server: spec.predictor.canaryTrafficPercent in body must be of type integer
    (lambda d: d["spec"]["predictor"].update(canaryTrafficPercent="10"),
     "spec.predictor.canaryTrafficPercent: '10' is not of type 'integer'", True),
    (lambda d: d["spec"]["predictor"]["model"]["modelFormat"].pop("name"),
     "spec.predictor.model.modelFormat: 'name' is a required property", True),
    (lambda d: d["spec"].pop("predictor"), "spec: 'predictor' is a required property", True),
    # a typo: the CRD alone prunes it (the model would have no storage); kubectl's strict validation refuses it
    (lambda d: d["spec"]["predictor"]["model"].update(storageURI=d["spec"]["predictor"]["model"].pop("storageUri")),
     "spec.predictor.model: Additional properties are not allowed ('storageURI' was unexpected)", False),
])
def test_the_check_catches_what_kserve_would_refuse(tmp_path, schemas, break_it, expected, raw_catches):
    raw, strict_ = schemas
    doc = copy.deepcopy(kserve.manifest(config(tmp_path), 10))
    break_it(doc)
    assert errors(strict_, doc) == [expected]
    assert (errors(raw, doc) == [expected]) is raw_catches


def test_status_is_not_checked(tmp_path, schemas):
    """x-kubernetes-preserve-unknown-fields: anything under status passes, so the check says nothing there."""
    doc = kserve.manifest(config(tmp_path), 10)
    doc["status"] = {"anything": ["at", 1, "all"]}
    assert errors(schemas[1], doc) == []


@pytest.mark.parametrize("args, message", [
    (["--canary-percent", "101"], "kubeflow.canary_traffic_percent (--canary-percent) must be within 0..100, not 101"),
    (["--set", "kubeflow.serving_dir=minio://mlpipeline/serving"], "kubeflow.serving_dir minio://mlpipeline/serving "
                                                                     "is no storageUri KServe can download"),
    (["--set", "serve.model_name=Transferline_1"], "serve.model_name 'Transferline_1' cannot name a KServe"),
])
def test_refusals_are_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "isvc.yaml"
    assert cli.main(["kserve", "--output", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_command_writes_where_asked_and_prints_the_path(tmp_path, capsys):
    out = tmp_path / "isvc.yaml"
    assert cli.main(["kserve", "--output", str(out), "--canary-percent", "5",
                     "--set", "kubeflow.serving_dir=gs://b/serving"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    doc = yaml.safe_load(out.read_text())
    assert doc["spec"]["predictor"]["canaryTrafficPercent"] == 5
    assert doc["spec"]["predictor"]["model"]["storageUri"] == "gs://b/serving"
