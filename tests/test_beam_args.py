"""beam.direct_running_mode = auto, the row count it decides on, and the Beam args a run gets (fast)."""
import os

import pytest

from components.errors import ConfigError
from pipelines import beam_args
from pipelines.config_loading import load_config


def _csv(path, n):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("text,label\n" + "".join(f"q{i} ?,HUM\n" for i in range(n)))


@pytest.mark.parametrize("rows, mode", [(10, "in_memory"), (100, "in_memory"), (101, "multi_processing"),
                                        (None, "multi_processing")])
def test_auto_picks_in_memory_up_to_the_threshold(rows, mode):
    assert beam_args.running_mode("auto", 100, rows) == mode


@pytest.mark.parametrize("explicit", ["in_memory", "multi_threading", "multi_processing"])
def test_explicit_mode_is_kept_whatever_the_size(explicit):
    assert beam_args.running_mode(explicit, 100, 10) == explicit
    assert beam_args.running_mode(explicit, 100, 10**9) == explicit


def test_config_args_in_memory_means_one_worker():
    config = load_config(None, ["beam.auto_in_memory_max_rows=1000", "beam.direct_num_workers=4"])
    local = f"--sdk_container_image={beam_args.LOCAL_ENVIRONMENT}"  # no TFX sdist per component
    assert config.beam_pipeline_args(999) == [local, "--direct_running_mode=in_memory", "--direct_num_workers=1"]
    assert config.beam_pipeline_args(1001) == [local, "--direct_running_mode=multi_processing",
                                               "--direct_num_workers=4"]
    # Unknown size (the compiled Kubeflow pipeline): what it always got.
    assert config.beam_pipeline_args()[1:] == ["--direct_running_mode=multi_processing", "--direct_num_workers=4"]


def test_local_args_switch_off_tfx_dependency_packaging():
    from tfx.utils import dependency_utils

    args = load_config(None).beam_pipeline_args(10)
    assert dependency_utils.make_beam_dependency_flags(args) == args  # no --extra_package=<tfx sdist>


def test_a_runner_in_extra_args_gets_no_direct_runner_settings():
    config = load_config(None, ["beam.extra_args=--runner=PortableRunner,--job_endpoint=localhost:1"])
    assert config.beam_pipeline_args(10) == ["--runner=PortableRunner", "--job_endpoint=localhost:1"]


def test_bad_mode_or_threshold_is_refused_naming_the_knob():
    with pytest.raises(ConfigError, match="beam.direct_running_mode"):
        load_config(None, ["beam.direct_running_mode=fast"])
    with pytest.raises(ConfigError, match="beam.auto_in_memory_max_rows"):
        load_config(None, ["beam.auto_in_memory_max_rows=-1"])


def test_count_rows_reads_the_chosen_spans_and_the_test_set(tmp_path):
    data, test = tmp_path / "data", tmp_path / "test"
    _csv(str(data / "span-1" / "a.csv"), 30)
    _csv(str(data / "span-2" / "a.csv"), 20)
    _csv(str(data / "span-2" / "b.csv"), 5)
    _csv(str(test / "t.csv"), 7)
    assert beam_args.count_rows(str(data), "span-*/*.csv", 0, str(test)) == 62
    assert beam_args.count_rows(str(data), "span-*/*.csv", 1, str(test)) == 32  # newest span only
    assert beam_args.count_rows(str(data), "span-*/a.csv", 1, "") == 20


def test_count_rows_is_unknown_for_remote_or_missing_data(tmp_path):
    assert beam_args.count_rows("gs://bucket/data", "span-*/*.csv", 0, "") is None
    assert beam_args.count_rows(str(tmp_path / "nowhere"), "span-*/*.csv", 0, "") is None
    assert beam_args.count_rows(str(tmp_path), "span-*/*.csv", 0, "") is None  # no spans
