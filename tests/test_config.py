"""The typed config: defaults run offline; a TOML file and CLI overrides change it; bad input is explained."""
import subprocess
import sys

import pytest

from components.errors import ConfigError
from pipelines.config_loading import load_config, to_toml


def test_defaults_run_offline():
    config = load_config()
    assert config.encoder.handle == "embedded"
    assert config.paths.data_dir.endswith("data/trec")


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('pipeline_name = "qa"\n[encoder]\nhandle = "/models/use"\n')
    config = load_config(str(path), ["encoder.handle=https://tfhub.dev/google/universal-sentence-encoder/4"])
    assert config.pipeline_name == "qa"
    assert config.encoder.handle == "https://tfhub.dev/google/universal-sentence-encoder/4"


def test_beam_args_follow_the_mode_and_a_users_runner():
    assert load_config(None, ["beam.direct_running_mode=in_memory"]).beam_pipeline_args() == [
        "--sdk_container_image=local-python-environment", "--direct_running_mode=in_memory",
        "--direct_num_workers=1"]
    flink = load_config(None, ["beam.extra_args=--runner=FlinkRunner,--flink_master=f:8081"])
    assert flink.beam_pipeline_args() == ["--runner=FlinkRunner", "--flink_master=f:8081"]  # no DirectRunner knobs


def test_derived_paths_follow_the_work_dir(tmp_path):
    config = load_config(None, [f"paths.work_dir={tmp_path}"])
    assert config.serving_dir == str(tmp_path / "serving") and config.pipeline_root == str(tmp_path / "pipeline_root")
    assert config.metadata_path == str(tmp_path / "metadata.sqlite")
    assert load_config(None, [f"paths.work_dir={tmp_path}", "paths.serving_dir=/srv/m"]).serving_dir == "/srv/m"


@pytest.mark.parametrize("comments", [False, True])
def test_printed_config_round_trips(tmp_path, comments):
    config = load_config(None, ["encoder.cache_dir=/tmp/x y"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config, comments=comments))
    assert load_config(str(path)) == config


def test_printed_config_says_what_each_knob_does():
    lines = to_toml(load_config(None, []), comments=True).splitlines()
    # each knob's comment from pipelines/config.py sits right above it, wrapped as TOML comments
    above = lines[lines.index("train_buckets = 4") - 1]
    assert above.startswith("# ") and "train:eval buckets" in above
    assert all(len(line) <= 102 for line in lines if line.startswith("#"))


@pytest.mark.parametrize("overrides, message", [
    (["encoder.nope=1"], "unknown setting 'encoder.nope'"),
    (["encoder=1"], "'encoder' is a section"),
    (["pipeline_name"], "not of the form"),
    (["trainer.hidden_units=many"], "trainer.hidden_units: expected int, got 'many'"),
    (["serve.log_requests=perhaps"], "serve.log_requests: expected true/false"),
    (["beam.direct_running_mode=fast"], "beam.direct_running_mode must be"),
    (["beam.direct_num_workers=-1"], "beam.direct_num_workers must be >= 0"),
    (["data.train_buckets=0"], "data.train_buckets and data.eval_buckets must be > 0"),
    (["data.train_spans=-2"], "data.train_spans must be >= 0"),
    (["data.file_pattern=*.csv"], "data.file_pattern must be span-*/<files>"),
    (["gate.min_accuracy=1.5"], "gate.min_accuracy must be within [0, 1]"),
    (["gate.max_accuracy_drop=-0.1"], "gate.max_accuracy_drop must be >= 0"),
    (["trainer.dropout=1"], "trainer.dropout must be within [0, 1)"),
    (["trainer.batch_size=0"], "trainer.hidden_units, batch_size and max_epochs must be > 0"),
    (["trainer.learning_rate=0"], "trainer.learning_rate must be > 0"),
    (["contract.max_text_chars=0"], "contract.max_text_chars must be > 0"),
    (["contract.max_duplicate_fraction=2"], "contract.max_duplicate_fraction must be within [0, 1]"),
    (["contract.max_label_drift=-1"], "contract.max_label_drift and max_length_drift must be >= 0"),
    (["serve.port=70000"], "serve.port must be within 0..65535"),
    (["serve.poll_seconds=0"], "serve.poll_seconds and serve.max_body_bytes must be > 0"),
    (["study.sizes="], "study.sizes must be a non-empty list"),
    (["study.seeds=0"], "study.seeds must be > 0"),
    (["monitor.topic_quantile=0.5"], "monitor.topic_quantile must be within (0, 0.5)"),
    (["monitor.max_off_topic_increase=-0.1"], "monitor.max_off_topic_increase must be within [0, 1]"),
    (["monitor.topic_neighbours=0"], "monitor.topic_neighbours must be >= 1 and below monitor.topic_sample"),
    (["monitor.topic_sample=5"], "monitor.topic_neighbours must be >= 1 and below monitor.topic_sample"),
])
def test_bad_overrides_are_explained(overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_config(None, overrides)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bad_file_via_cli_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[encoder\n")
    result = subprocess.run([sys.executable, "-m", "ops.cli", "config", "--config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not valid TOML" in result.stderr


@pytest.mark.slow  # imports TFX
def test_schema_is_staged_by_content(tmp_path):
    """ImportSchemaGen caches on the schema's path: an edited schema must get a new path, an unchanged one not."""
    from pipelines.local_runner import stage_schema

    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "text" type: BYTES }\n')
    config = load_config(None, [f"paths.schema_file={schema}", f"paths.work_dir={tmp_path / 'work'}"])
    first = stage_schema(config).paths.schema_file
    assert stage_schema(config).paths.schema_file == first and open(first).read() == schema.read_text()
    schema.write_text('feature { name: "text" type: BYTES }\nfeature { name: "label" type: BYTES }\n')
    assert stage_schema(config).paths.schema_file != first
    assert config.paths.schema_file == str(schema)  # the caller's config is left alone


def test_every_path_knob_in_a_file_is_relative_to_the_file(tmp_path, monkeypatch):
    """A moved `init` project finds everything: each knob marked path() resolves against the config file,
    including the request log, monitor and study folders (once hand-listed, and missed)."""
    import dataclasses

    from pipelines.config import Config
    from pipelines.config_loading import load_config

    project = tmp_path / "moved" / "project"
    project.mkdir(parents=True)
    defaults = Config()
    sections_ = [getattr(defaults, s.name) for s in dataclasses.fields(Config)]
    marked = {(s.name, f.name) for s, value in zip(dataclasses.fields(Config), sections_)
              if dataclasses.is_dataclass(value) for f in dataclasses.fields(value) if f.metadata.get("path")}
    assert {("request_log", "dir"), ("monitor", "out_dir"), ("active", "out_dir"), ("study", "out_dir"),
            ("paths", "work_dir"), ("kubeflow", "package_path")} <= marked
    sections = {}
    for section, key in sorted(marked):
        sections.setdefault(section, []).append(f'{key} = "rel/{section}-{key}"')
    (project / "transferline.toml").write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()))
    monkeypatch.chdir(tmp_path)  # elsewhere: the cwd must not matter
    config = load_config(str(project / "transferline.toml"))
    for section, key in marked:
        assert getattr(getattr(config, section), key) == str(project / "rel" / f"{section}-{key}"), (section, key)
    work = config.work
    assert (work.requests_dir, work.monitor_dir, work.active_dir) == (
        str(project / "rel" / "request_log-dir"), str(project / "rel" / "monitor-out_dir"),
        str(project / "rel" / "active-out_dir"))


def test_the_work_dir_layout_has_one_home():
    from pipelines.config_loading import load_config
    from pipelines.work_dir import WorkDir

    config = load_config(None, ["paths.work_dir=/w"])
    assert config.work == WorkDir("/w")
    assert (config.serving_dir, config.pipeline_root, config.metadata_path) == (
        "/w/serving", "/w/pipeline_root", "/w/metadata.sqlite")
    assert (config.work.reports("r1"), config.work.rollbacks_log, config.work.logs, config.work.requests_dir,
            config.work.compiled_pipeline, config.work.lock) == (
        "/w/reports/r1", "/w/reports/rollbacks.jsonl", "/w/logs", "/w/requests", "/w/kubeflow/pipeline.yaml", "/w/.lock")
    moved = load_config(None, ["paths.work_dir=/w", "paths.serving_dir=/s", "request_log.dir=/r"])
    assert (moved.serving_dir, moved.work.requests_dir) == ("/s", "/r")


def test_gate_data_and_span_files_are_spelled_once():
    from components.names import EVAL_SPLIT, TEST_SPLIT, gate_splits
    from components.span_folders import span_file_glob

    assert gate_splits() == [EVAL_SPLIT, TEST_SPLIT] and gate_splits(False) == [EVAL_SPLIT]
    assert span_file_glob("span-*/*.csv") == "*.csv" and span_file_glob("span-*/part-*.csv") == "part-*.csv"
