"""`transferline canary` on hand-built request logs (no model, no server): the figures, the verdict and its exit
codes, the labelled overlap, old logs beside new ones, and the scheduled retrain's settle step."""
import csv
import datetime
import json
import os

import numpy as np
import pytest

from components import rollout
from ops import cli
from ops.loop import canary
from ops.serving import request_log
from pipelines.config_loading import load_config

CLASSES = ["ABBR", "HUM", "LOC"]
NOW = datetime.datetime.now(datetime.timezone.utc)


def outputs(labels, confidence):
    """A signature's outputs for these top classes: the top one at `confidence`, the rest shared."""
    probs = []
    for label in labels:
        rest = (1 - confidence) / (len(CLASSES) - 1)
        probs.append([confidence if c == label else rest for c in CLASSES])
    return {"classes": [CLASSES] * len(labels), "probabilities": np.array(probs)}


def write_log(directory, requests, start=None):
    """requests: (texts, stable labels, canary labels or None, stable confidence, canary confidence, stable s,
    canary s, shadow), one request each, a second apart; written as `serve` writes them (to_rows)."""
    os.makedirs(directory, exist_ok=True)
    start = (start or NOW - datetime.timedelta(hours=1)).timestamp()
    rows = []
    for i, (texts, ours, theirs, c1, c2, s1, s2, shadow) in enumerate(requests):
        rows += request_log.to_rows(start + i, "transferline", 1, "serving_default", False,
                                    [t.encode() for t in texts], outputs(ours, c1), s1, shadow,
                                    None if theirs is None else (2, outputs(theirs, c2), s2))
    path = os.path.join(directory, f"requests-{len(os.listdir(directory)):03d}.csv")
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(request_log.FIELDS) + "\n")
        csv.DictWriter(f, request_log.FIELDS, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    return path


def shadowed(n, agree, *, c1=0.9, c2=0.9, s1=0.010, s2=0.010, texts=None):
    """n one-instance requests: stable says LOC; the canary agrees on the first `agree`, says HUM on the rest."""
    texts = texts or [f"question number {i} ?" for i in range(n)]
    return [([texts[i]], ["LOC"], ["LOC" if i < agree else "HUM"], c1, c2, s1, s2, "scored") for i in range(n)]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A work dir whose serving dir has stable 1 and canary 2 (pushed two hours ago), and a data dir."""
    serving = tmp_path / "work" / "serving"
    for v in (1, 2):
        (serving / str(v) / "assets.extra").mkdir(parents=True)
        (serving / str(v) / "assets.extra" / "transferline.json").write_text(json.dumps(
            {"version": v, "pushed_at": (NOW - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S%z")}))
    monkeypatch.setattr(rollout, "read", lambda d: rollout.Rollout(1, 2, os.path.join(d, "models.config")))
    (tmp_path / "data" / "span-1").mkdir(parents=True)
    return tmp_path


def config_for(root, *overrides):
    return load_config(None, [f"paths.work_dir={root / 'work'}", f"paths.data_dir={root / 'data'}", *overrides])


def cli_args(root, *overrides):
    args = ["canary", "--work-dir", str(root / "work"), "--set", f"paths.data_dir={root / 'data'}"]
    for o in overrides:
        args += ["--set", o]
    return args


def test_the_figures_follow_the_logged_answers(project):
    # 200 requests: 150 agree; the canary 0.1 less confident; three times slower
    write_log(project / "work" / "requests", shadowed(200, 150, c1=0.9, c2=0.8, s1=0.010, s2=0.030))
    result = canary.run_canary(config_for(project))
    assert (result["shadowed"], result["shadowed_requests"], result["stable"], result["canary"]) == (200, 200, 1, 2)
    checks = result["checks"]
    assert checks["agreement"]["value"] == pytest.approx(150 / 200)
    assert checks["class_shift"]["value"] == pytest.approx(50 / 200) and checks["class_shift"]["class"] in (
        "LOC", "HUM")
    assert result["class_shares"]["LOC"] == pytest.approx({"stable": 1.0, "canary": 0.75})
    assert checks["confidence_drop"]["value"] == pytest.approx(0.1, abs=1e-5)
    assert result["latency"]["stable"]["median_ms"] == pytest.approx(10.0)
    assert result["latency"]["canary"]["p90_ms"] == pytest.approx(30.0)
    assert checks["latency_ratio"]["value"] == pytest.approx(3.0)
    assert checks["accuracy_drop"]["passed"] is None  # nothing labelled
    assert result["verdict"] == "fail"
    assert {c for c, v in checks.items() if v["passed"] is False} == {
        "agreement", "class_shift", "confidence_drop", "latency_ratio"}
    on_disk = json.loads(open(result["json_path"]).read())
    assert on_disk["checks"]["agreement"]["value"] == pytest.approx(0.75)
    assert os.path.dirname(os.path.dirname(result["json_path"])) == str(project / "work" / "canary")


def test_exit_codes_pass_fail_and_too_little(project, capsys):
    log = project / "work" / "requests"
    write_log(log, shadowed(120, 120))
    assert cli.main(cli_args(project)) == 0
    assert "PASS" in capsys.readouterr().err
    write_log(log, shadowed(80, 0, texts=[f"other {i}" for i in range(80)]),  # 120 of 200 agree now
              start=NOW - datetime.timedelta(minutes=30))
    assert cli.main(cli_args(project)) == 6
    err = capsys.readouterr().err
    assert "FAIL" in err and "agreement" in err.splitlines()[-1]
    assert cli.main(cli_args(project, "rollout.min_agreement=0.5", "rollout.max_class_shift=0.5")) == 0
    capsys.readouterr()
    # a window holding the first 41 of them: too little to judge, whatever they say
    until = (NOW - datetime.timedelta(hours=1) + datetime.timedelta(seconds=40.5)).isoformat()
    assert cli.main(cli_args(project) + ["--until", until]) == 7
    assert "41 shadowed instance(s)" in capsys.readouterr().err


def test_unshadowed_rows_dropped_rows_and_old_logs_do_not_count(project):
    log = project / "work" / "requests"
    old = log / "sidecar.csv"  # a log from before the shadow columns, with a malformed line
    log.mkdir(parents=True)
    stamp = (NOW - datetime.timedelta(minutes=30)).isoformat()
    old.write_text("time,model,version,signature,text,label,score,probabilities\n"
                   f'{stamp},transferline,1,serving_default,old text,LOC,0.9,"{{""LOC"":0.9,""HUM"":0.1}}"\n'
                   '"2025-01-01T00:00:00+00:00","cut short\n')
    requests = shadowed(100, 100)
    requests += [(["dropped one"], ["LOC"], None, 0.9, 0, 0.01, 0, "dropped")] * 7
    requests += [(["failed one"], ["LOC"], None, 0.9, 0, 0.01, 0, "failed")] * 2
    write_log(log, requests)
    result = canary.run_canary(config_for(project))
    assert result["shadowed"] == 100 and result["logged"] == 110
    assert result["not_shadowed"] == {"dropped": 7, "failed": 2}
    assert result["malformed_lines"] == 1
    frame = request_log.read_requests(str(log), warn=lambda m: None)
    old_row = frame[frame["text"] == "old text"].iloc[0]
    assert old_row["shadow"] == "" and old_row["canary_probabilities"] == {} and np.isnan(old_row["scoring_ms"])


def test_accuracy_on_texts_labelled_since(project):
    texts = [f"Who is person {i} ?" for i in range(100)]
    # stable says LOC for all; the canary HUM on the last 40; labels arrive for 50 of them, all HUM
    write_log(project / "work" / "requests", shadowed(100, 60, texts=texts))
    with open(project / "data" / "span-1" / "labels.csv", "w") as f:
        f.write("text,label\n" + "".join(f'"  {t.upper()}",HUM\n' for t in texts[50:]))  # normalized to match
    relaxed = ["rollout.min_agreement=0", "rollout.max_class_shift=1"]
    result = canary.run_canary(config_for(project, *relaxed))
    acc = result["accuracy"]
    assert acc["labelled"] == 50
    assert acc["stable"] == pytest.approx(0.0) and acc["canary"] == pytest.approx(40 / 50)
    assert result["checks"]["accuracy_drop"]["value"] == pytest.approx(-0.8)
    assert result["verdict"] == "pass"
    # the reverse (labels say LOC): the canary is worse by 0.8, judged once min_labelled are there
    with open(project / "data" / "span-1" / "labels.csv", "w") as f:
        f.write("text,label\n" + "".join(f"{t},LOC\n" for t in texts[50:]))
    assert canary.run_canary(config_for(project, *relaxed))["verdict"] == "fail"
    assert canary.run_canary(config_for(project, *relaxed, "rollout.min_labelled=51"))["verdict"] == "pass"


def test_no_canary_is_one_line(project, monkeypatch, capsys):
    monkeypatch.setattr(rollout, "read", lambda d: rollout.Rollout(1, None, ""))
    assert cli.main(cli_args(project)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no canary on trial" in err and "version 1 alone" in err


@pytest.mark.parametrize("agree, hours, n, done", [
    (120, 1.0, 120, "promoted"), (0, 1.0, 120, "dropped"), (120, 3.0, 120, "early"), (120, 1.0, 50, "too_little"),
    (120, 0, 120, "manual")])
def test_settle_promotes_drops_or_leaves(project, monkeypatch, agree, hours, n, done):
    from ops.pipeline import promote, rollback

    called = []
    monkeypatch.setattr(promote, "promote", lambda config, reason: called.append(("promote", reason)))
    monkeypatch.setattr(rollback, "drop_canary", lambda config, reason: called.append(("drop", reason)))
    write_log(project / "work" / "requests", shadowed(n, min(agree, n)))
    said = []
    config = config_for(project, "rollout.mode=canary", f"rollout.promote_after_hours={hours}")
    assert canary.settle(config, said.append) == done
    assert [c[0] for c in called] == {"promoted": ["promote"], "dropped": ["drop"]}.get(done, [])
    if called:  # the reason names the verdict and its JSON
        assert "canary verdict" in called[0][1] and os.path.exists(called[0][1].split("(")[-1].rstrip(")"))
    assert said and "canary version 2" in said[0]


@pytest.mark.parametrize("mode, settled", [("canary", True), ("replace", False)])
def test_retrain_settles_the_canary_first_in_canary_mode_only(project, monkeypatch, mode, settled):
    """`retrain` calls settle before anything of the run (stopped right after it here: no pipeline)."""
    from pipelines import run_inputs

    class Stop(Exception):
        pass

    calls = []
    monkeypatch.setattr(canary, "settle", lambda config, log: calls.append(config.rollout.mode))
    monkeypatch.setattr(run_inputs, "input_digest", lambda config: (_ for _ in ()).throw(Stop()))
    (project / "data" / "span-1" / "q.csv").write_text("text,label\nWho ?,HUM\n")
    with pytest.raises(Stop):
        cli.main(["retrain", "--work-dir", str(project / "work"), "--data", str(project / "data"),
                  "--set", f"rollout.mode={mode}"])
    assert calls == (["canary"] if settled else [])
