"""The typed config: defaults run offline; a TOML file and CLI overrides change it; bad input is explained."""
import subprocess
import sys

import pytest

from components.errors import ConfigError
from pipelines.config import load_config, to_toml


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


def test_printed_config_round_trips(tmp_path):
    config = load_config(None, ["encoder.cache_dir=/tmp/x y"])
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config))
    assert load_config(str(path)) == config


@pytest.mark.parametrize("overrides, message", [
    (["encoder.nope=1"], "unknown setting 'encoder.nope'"),
    (["encoder=1"], "'encoder' is a section"),
    (["pipeline_name"], "not of the form"),
])
def test_bad_overrides_are_explained(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_bad_file_via_cli_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[encoder\n")
    result = subprocess.run([sys.executable, "-m", "ops.cli", "config", "--config", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not valid TOML" in result.stderr


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
