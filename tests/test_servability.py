"""The servability gate (components/servability.py) and the warmup file (components/warmup.py): what a run
pushes, a candidate whose warmup record fails (not pushed, said in words, in MLMD), and `serve` refusing a
version whose warmup fails as TF Serving does (saved_model_warmup_util.cc:113-127)."""
import os
import shutil

import pytest

from components import names
from components.names import GateReason
from ops.pipeline.summary import format_summary
from pipelines.mlmd_store import pick_run, run_outputs
from pipelines.runs import summarize_run
from recorded_mlmd import PIPELINE, RecordedRuns


def _recorded(servable: bool):
    infra = {names.BLESSED: int(servable), names.WARMUP_RECORDS: 10}
    if not servable:
        infra[names.REASON] = "a warmup record failed, so TF Serving would not load it (INVALID_ARGUMENT): x"
    runs = RecordedRuns()
    runs.run("2026-12-01T03:00:00", {
        names.PUSH_GATE: ("COMPLETE", {"gate": ("ModelBlessing", "/root/gate", {names.REASON: GateReason.OK})}),
        names.INFRA_VALIDATOR: ("COMPLETE", {"blessing": ("InfraBlessing", "/root/infra", infra)}),
        names.PUSHER: ("COMPLETE", {"pushed_model": ("PushedModel", "/root/pushed", {
            names.PUSHED: int(servable), names.PUSHED_DESTINATION: "/serving/9" if servable else ""})})})
    context = pick_run(runs.store, PIPELINE, 0)
    return summarize_run(PIPELINE, context, *run_outputs(runs.store, context), [])


def test_the_summary_says_why_the_servability_gate_refused():
    s = _recorded(False)
    assert s.servable is False and s.pushed_path is None
    text = format_summary(s)
    assert ("  servability: REFUSED: a warmup record failed, so TF Serving would not load it (INVALID_ARGUMENT): x; "
            "nothing pushed, the served model is unchanged") in text
    assert "pushed: nothing (the served model is unchanged)" in text
    ok = format_summary(_recorded(True))
    assert "servability: loads as TF Serving loads it; 10 warmup records replayed" in ok and "REFUSED" not in ok


# ------------------------------------------------------------------------------------------ with TensorFlow
def _records(model_dir):
    from tensorflow_serving.apis import prediction_log_pb2

    from components import warmup

    return [prediction_log_pb2.PredictionLog.FromString(r) for r in warmup.read(model_dir)]


def _tamper(model_dir) -> int:
    """Rewrites the warmup file with its first raw-text record asking for an input the signature does not
    have; returns that record's index."""
    from components import warmup

    logs = _records(model_dir)
    index = next(i for i, log in enumerate(logs) if names.TEXT in log.predict_log.request.inputs)
    request = logs[index].predict_log.request
    request.inputs["txt"].CopyFrom(request.inputs.pop(names.TEXT))
    os.remove(os.path.join(model_dir, warmup.WARMUP_FILE))
    warmup.write(model_dir, logs)
    return index


@pytest.mark.slow
def test_a_run_pushes_its_model_with_a_warmup_file_that_replays(slice_runs):
    from components import warmup
    from components.servability import check_in_subprocess
    from pipelines.mlmd_store import connect, prop

    s = slice_runs.summary(0)
    assert s.servable and s.warmup_records == 2 * warmup.NUM_EXAMPLES + 2
    logs = _records(s.pushed_path)
    assert len(logs) == s.warmup_records <= warmup.MAX_RECORDS
    assert {log.WhichOneof("log_type") for log in logs} == {"predict_log"}
    by_signature = {}
    for log in logs:
        request = log.predict_log.request
        by_signature.setdefault(request.model_spec.signature_name, set()).update(request.inputs)
    assert by_signature == {names.SERVING_DEFAULT: {names.TEXT}, names.SERVING_EXAMPLES: {names.EXAMPLES_INPUT}}
    verdict = check_in_subprocess(s.pushed_path)  # a fresh process, as TF Serving loads it
    assert verdict["ok"] and verdict["records"] == len(logs), verdict
    # MLMD: TFX's InfraBlessing contract, which TFX's Pusher pushed from.
    context = pick_run(connect(slice_runs.metadata_path), "transferline", 0)
    _, outputs = run_outputs(connect(slice_runs.metadata_path), context)
    infra = outputs[names.INFRA_BLESSING][0]
    assert prop(infra, names.BLESSED) == 1 and prop(infra, "has_model") == 1
    assert os.path.exists(os.path.join(infra.uri, "INFRA_BLESSED"))
    assert os.path.exists(os.path.join(infra.uri, "stamped_model", warmup.WARMUP_FILE))
    assert "servability: loads as TF Serving loads it" in slice_runs.results[0].stdout


@pytest.mark.slow
def test_a_candidate_whose_warmup_record_fails_is_not_pushed(slice_runs, tmp_path, monkeypatch):
    """A real run (in this process, so the warmup writer can be made to write a failing record)."""
    from components import warmup
    from pipelines import local_runner
    from pipelines.config_loading import load_config
    from pipelines.mlmd_store import connect, prop

    written = warmup.prediction_logs

    def tampered(*args, **kwargs):
        logs = written(*args, **kwargs)
        request = logs[-1].predict_log.request  # the batch of raw texts, sent to a signature input that is not there
        request.inputs["txt"].CopyFrom(request.inputs.pop(names.TEXT))
        return logs

    monkeypatch.setattr(warmup, "prediction_logs", tampered)
    config = load_config(None, [f"paths.data_dir={slice_runs.root}/data", f"paths.test_data_dir={slice_runs.root}/test",
                                f"paths.work_dir={tmp_path}/work", "beam.direct_running_mode=in_memory"])
    s = local_runner.run(config).record.summary
    assert s.blessed and s.gate_reason == GateReason.OK  # the model was good: only servability held it back
    assert s.servable is False and s.pushed_path is None
    assert s.servability_reason.startswith("a warmup record failed, so TF Serving would not load it "
                                           "(INVALID_ARGUMENT): Signature input alias: text not found in request")
    assert not os.path.isdir(config.serving_dir) or not [v for v in os.listdir(config.serving_dir) if v.isdigit()]
    text = format_summary(s)
    assert f"servability: REFUSED: {s.servability_reason}; nothing pushed" in text
    store = connect(config.metadata_path)
    _, outputs = run_outputs(store, pick_run(store, "transferline"))
    infra = outputs[names.INFRA_BLESSING][0]
    assert prop(infra, names.BLESSED) == 0 and prop(infra, "has_model") == 0
    assert prop(infra, names.REASON) == s.servability_reason
    assert not os.path.exists(os.path.join(infra.uri, "stamped_model"))  # nothing left that could be pushed
    assert prop(outputs[names.PUSHED_MODEL][0], names.PUSHED) == 0


@pytest.mark.slow
def test_serve_keeps_the_previous_version_when_a_warmup_record_fails(slice_runs, tmp_path):
    from components import warmup
    from ops.serving import loaded_model
    from serve_helpers import PREDICT, TEXTS, make_config, push, request, running, served_version, wait_for

    pushed = slice_runs.summary(0).pushed_path
    broken = str(tmp_path / "broken")
    shutil.copytree(pushed, broken)
    index = _tamper(broken)
    with pytest.raises(warmup.WarmupFailed,
                       match=rf"^Signature input alias: text not found in request .*\(warmup record {index}\)$"):
        loaded_model.load(2, broken)

    serving_dir = str(tmp_path / "serving")
    os.makedirs(serving_dir)
    push(pushed, serving_dir, 1)
    with running(make_config(serving_dir)) as (server, logs):
        assert served_version(server.url) == "1"
        staging = os.path.join(serving_dir, ".staging-2")
        shutil.copytree(broken, staging)
        os.rename(staging, os.path.join(serving_dir, "2"))
        wait_for(lambda: any("version 2 failed to load" in m for m in logs), "version 2 to be refused")
        status, body = request(server.url, "/v1/models/transferline/versions/2")  # GetModelStatus, as TF Serving
        (v2,) = body["model_version_status"]
        assert status == 200 and v2["state"] == "END" and v2["status"]["error_code"] == "INVALID_ARGUMENT"
        assert f"warmup record {index}" in v2["status"]["error_message"]
        assert served_version(server.url) == "1"
        status, answer = request(server.url, PREDICT, {"instances": TEXTS})
        assert status == 200 and len(answer["predictions"]) == len(TEXTS)
