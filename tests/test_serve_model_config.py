"""`serve --model-config-file`: TF Serving's ModelServerConfig (several models, version policies, labels, reload).

Unit tests need no model; the slow ones serve the slice run's pushed model as two versions of one model and one
version of another. Sources: tensorflow/serving 2.16.1 (ops/serving/model_config.py cites the lines)."""
import os
import threading
import time

import pytest

from conftest import run_cli
from ops.serving import model_config
from ops.serving.model_config import ModelConfigError, ModelEntry, aspired, parse, resolve_labels
from ops.serving.serve import ModelServer
from serve_helpers import TEXTS, make_config, model_dir, push, request, wait_for  # noqa: F401


def config_text(*models):
    """A ModelServerConfig text proto as a user writes one: (name, base, policy text, {label: version})."""
    out = ["model_config_list {"]
    for name, base, policy, labels in models:
        out += ["  config {", f"    name: '{name}'", f"    base_path: '{base}'", "    model_platform: 'tensorflow'"]
        if policy:
            out.append(f"    model_version_policy {{ {policy} }}")
        out += [f"    version_labels {{ key: '{k}' value: {v} }}" for k, v in labels.items()]
        out.append("  }")
    return "\n".join(out + ["}"]) + "\n"


def write(path, text):  # atomically, as a deploy tool (or write_model_config) replaces the file
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------------------------------- unit
def test_parse_reads_models_policies_and_labels():
    text = config_text(("a", "/m/a", "specific { versions: 1 versions: 2 }", {"stable": 1, "canary": 2}),
                       ("b", "/m/b", "", {}), ("c", "/m/c", "latest { num_versions: 3 }", {}),
                       ("d", "/m/d", "all {}", {}))
    a, b, c, d = parse(text, "f")
    assert a == ModelEntry("a", "/m/a", "specific", 1, (1, 2), (("canary", 2), ("stable", 1)))
    assert (b.policy, b.num_versions, c.policy, c.num_versions, d.policy) == ("latest", 1, "latest", 3, "all")
    assert parse("", "f") is None  # CONFIG_NOT_SET: "Taking no action for empty config" (SC:470-475)


def test_a_syntax_error_is_one_line_naming_the_line():
    text = config_text(("a", "/m/a", "", {})).replace("model_platform", "model_platfrom")
    with pytest.raises(ModelConfigError) as e:
        parse(text, "/x/models.config")
    assert str(e.value) == ("Invalid protobuf file: '/x/models.config': line 5 column 5: Message type "
                            "\"tensorflow.serving.ModelConfig\" has no field named \"model_platfrom\".")
    with pytest.raises(ModelConfigError, match=r"^Invalid protobuf file: 'f': line 2 column \d+: "):
        parse("model_config_list {\n  config { name: 'a'\n", "f")


@pytest.mark.parametrize("models, message", [
    ([("a", "/m/a"), ("a", "/m/b")], "Illegal to list model a multiple times in config list"),
    ([("a", "models/a")], "Expected model a to have an absolute path or URI; got base_path()=models/a"),
    ([("a", "/m/a", "")], "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
                          "ModelServerConfig::model_platform, model name is a"),
    ([("a", "/m/a", "pytorch")], "Model a requests unsupported platform pytorch"),
])
def test_validate_refuses_what_server_core_refuses(models, message):
    entries = [ModelEntry(m[0], m[1], platform=m[2] if len(m) > 2 else "tensorflow") for m in models]
    with pytest.raises(ModelConfigError) as e:
        model_config.validate(entries)
    assert str(e.value) == message


def test_policies_pick_versions_as_the_file_system_source():
    disk = [1, 3, 7, 12]
    assert aspired(ModelEntry("m", "/b"), disk) == ([12, 7, 3, 1], 1)  # latest: the highest that loads
    assert aspired(ModelEntry("m", "/b", "latest", 2), disk) == ([12, 7, 3, 1], 2)
    assert aspired(ModelEntry("m", "/b", "all"), disk) == ([12, 7, 3, 1], 4)
    assert aspired(ModelEntry("m", "/b", "specific", versions=(3, 5, 12)), disk) == ([12, 3], 2)
    assert model_config.missing_specific(ModelEntry("m", "/b", "specific", versions=(3, 5)), disk) == [5]


def test_labels_need_an_available_version_unless_allowed_and_new():
    e = [ModelEntry("m", "/b", labels=(("canary", 2), ("stable", 1)))]
    assert resolve_labels(e, {"m": {1, 2}}, {}, False) == {"m": {"canary": 2, "stable": 1}}
    refused = "Request to assign label to version 2 of model m, which is not currently available for inference"
    with pytest.raises(ModelConfigError, match=f"^{refused}$"):
        resolve_labels(e, {"m": {1}}, {}, False)
    # --allow_version_labels_for_unavailable_models: a new label, or one keeping its version, may point anywhere;
    # moving an existing label still needs an available version (SC:515-527).
    assert resolve_labels(e, {"m": {1}}, None, True)["m"]["canary"] == 2
    assert resolve_labels(e, {"m": {1}}, {"m": {"canary": 2}}, True)["m"]["canary"] == 2
    with pytest.raises(ModelConfigError, match=f"^{refused}$"):
        resolve_labels(e, {"m": {1}}, {"m": {"canary": 1}}, True)


def test_write_model_config_round_trips_atomically(tmp_path):
    path = str(tmp_path / "models.config")
    models = [ModelEntry("a", "/m/a", "specific", versions=(1, 2), labels=(("canary", 2), ("stable", 1))),
              ModelEntry("b", "/m/b", "latest", 3), ModelEntry("c", "/m/c", "all"), ModelEntry("d", "/m/d")]
    model_config.write_model_config(path, models)
    assert model_config.read(path) == models
    assert os.listdir(tmp_path) == ["models.config"]  # no temporary left beside it
    model_config.write_model_config(path, [])
    assert model_config.read(path) == []  # an empty list (unload all), not an empty config


def test_serve_with_a_malformed_config_file_exits_2_in_one_line(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("model_config_list {\n  config { name: 'a' base_path: '/m/a' \n  oops\n}\n")
    result = run_cli("serve", "--work-dir", str(tmp_path / "work"), "--model-config-file", str(path),
                     "--set", "serve.port=0")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"Invalid protobuf file: '{path}': line 3 column" in lines[0], result.stderr


def test_a_label_at_start_needs_allow_version_labels_for_unavailable_models(tmp_path):
    path = str(tmp_path / "models.config")
    write(path, config_text(("a", str(tmp_path), "", {"stable": 1})))
    config = make_config(str(tmp_path / "serving"), f"serve.model_config_file={path}")
    with pytest.raises(ModelConfigError, match="Request to assign label to version 1 of model a, which is not "
                                               "currently available for inference"):
        ModelServer(config, log=lambda m: None).start()


# ---------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def bases(model_dir, tmp_path_factory):
    """Model a: versions 1 and 2 (the same SavedModel twice); model b: version 1."""
    root = tmp_path_factory.mktemp("model_config")
    a, b = str(root / "a"), str(root / "b")
    os.makedirs(a), os.makedirs(b)
    push(model_dir, a, 1), push(model_dir, a, 2), push(model_dir, b, 1)
    return root, a, b


def version_of(url, path):
    status, body = request(url, path, timeout=30)
    return body["model_spec"]["version"] if status == 200 else (status, body)


@pytest.mark.slow
def test_two_models_specific_versions_labels_and_reload(bases):
    root, a, b = bases
    path = str(root / "models.config")
    specific = "specific { versions: 1 versions: 2 }"
    write(path, config_text(("a", a, specific, {}), ("b", b, "", {})))
    logs = []
    config = make_config(str(root / "serving"), f"serve.model_config_file={path}",
                         "serve.model_config_poll_seconds=0.3")
    server = ModelServer(config, log=logs.append).start()
    try:
        url = server.url
        assert server.listening  # every model loaded before the port opens
        # Two models at once; `specific` serves both versions of a, Latest being the highest.
        for route in ("/v1/models/a/versions/1:predict", "/v1/models/a/versions/2:predict", "/v1/models/a:predict",
                      "/v1/models/b:predict"):
            status, body = request(url, route, {"instances": TEXTS[:2]})
            assert status == 200 and len(body["predictions"]) == 2, (route, body)
        assert version_of(url, "/v1/models/a/metadata") == "2" and version_of(url, "/v1/models/b/metadata") == "1"
        assert [v["state"] for v in request(url, "/v1/models/a")[1]["model_version_status"]] == ["AVAILABLE"] * 2
        assert request(url, "/v1/models/b/versions/2:predict", {"instances": ["x"]}) == (
            404, {"error": "Servable not found for request: Specific(b, 2)"})
        assert request(url, "/v1/models/a/labels/stable:predict", {"instances": ["x"]}) == (
            400, {"error": "Unrecognized servable version label: stable"})

        # Labels added once the versions serve (as TF Serving requires without the allow flag).
        write(path, config_text(("a", a, specific, {"stable": 1, "canary": 2}), ("b", b, "", {})))
        wait_for(lambda: version_of(url, "/v1/models/a/labels/stable/metadata") == "1", "the labels", timeout=10)
        assert version_of(url, "/v1/models/a/labels/canary/metadata") == "2"
        status, body = request(url, "/v1/models/a/labels/canary:predict", {"instances": TEXTS[:2]})
        assert status == 200 and len(body["predictions"]) == 2

        # A label to a version not loaded: refused with TF Serving's text, logged once; the old labels stay.
        write(path, config_text(("a", a, specific, {"stable": 1, "canary": 3}), ("b", b, "", {})))
        refused = ("PollFilesystemAndReloadConfig failed to ReloadConfig: Request to assign label to version 3 of "
                   "model a, which is not currently available for inference")
        wait_for(lambda: any(refused in m for m in logs), "the refusal", timeout=10)
        time.sleep(1)  # several polls: logged once
        assert sum(refused in m for m in logs) == 1
        assert version_of(url, "/v1/models/a/labels/canary/metadata") == "2"

        # A malformed file at reload: logged, the config in force stays (server.cc:162-170).
        write(path, "model_config_list { config { name: 'a' \n oops }\n")
        wait_for(lambda: any("Failed to read ModelServerConfig file: Invalid protobuf file: " in m and "line 2" in m
                             for m in logs), "the parse error", timeout=10)
        assert version_of(url, "/v1/models/a/labels/canary/metadata") == "2"

        # The label moves while a client loops on it: no request fails, and it moves within a few polls.
        answers, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                try:
                    answers.append(request(url, "/v1/models/a/labels/canary/metadata", timeout=30))
                    status, body = request(url, "/v1/models/a/labels/canary:predict", {"instances": TEXTS[:1]})
                    answers.append((status, body if status != 200 else None))
                except OSError as e:
                    answers.append((None, repr(e)))

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        try:
            time.sleep(0.5)
            write(path, config_text(("a", a, specific, {"stable": 2, "canary": 1}), ("b", b, "", {})))
            moved_at = time.monotonic()
            wait_for(lambda: version_of(url, "/v1/models/a/labels/canary/metadata") == "1", "canary to move",
                     timeout=10)
            moved_in = time.monotonic() - moved_at
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join(timeout=60)
        failed = [a for a in answers if a[0] != 200]
        seen = [a[1]["model_spec"]["version"] for a in answers if a[0] == 200 and a[1] and "model_spec" in a[1]]
        assert not failed and len(answers) > 4, failed[:3]
        assert seen[0] == "2" and seen[-1] == "1" and seen == sorted(seen, reverse=True)  # moved once, for good
        assert moved_in < 0.3 + 1.0, moved_in  # one poll interval, plus a request's time
        assert version_of(url, "/v1/models/a/labels/stable/metadata") == "2"
        print(f"canary moved in {moved_in:.2f} s; {len(answers)} answers while it moved, 0 failed")

        # Model b leaves the config: unloaded, listed END, 404.
        write(path, config_text(("a", a, specific, {"stable": 2, "canary": 1})))
        wait_for(lambda: request(url, "/v1/models/b:predict", {"instances": ["x"]})[0] == 404, "b to unload",
                 timeout=10)
        assert request(url, "/v1/models/b:predict", {"instances": ["x"]})[1] == {
            "error": "Servable not found for request: Latest(b)"}
        status = request(url, "/v1/models/b")
        assert status[1]["model_version_status"][0]["state"] == "END", status
        assert server.lookup("a", label="stable").version == 2  # what gRPC calls

        # A model added to the config loads and answers (c: b's directory under another name).
        write(path, config_text(("a", a, specific, {"stable": 2, "canary": 1}), ("c", b, "", {})))
        wait_for(lambda: request(url, "/v1/models/c:predict", {"instances": ["x"]})[0] == 200, "c to load",
                 timeout=60)
        assert version_of(url, "/v1/models/c/metadata") == "1"
    finally:
        server.shutdown()
