"""The checked-in Kubeflow IR is current: compiled in process (TFX's KubeflowV2DagRunner, no pipeline run)
and compared byte for byte, so an edit anywhere that changes the IR (a component's code fingerprint, a
name, a knob's default) fails the fast tier at once, not only the end-to-end one. `make ir` regenerates it."""
import os

from conftest import REPO


def test_checked_in_pipeline_yaml_is_current(tmp_path):
    from pipelines.config_loading import load_config
    from pipelines.kubeflow_runner import compile_pipeline

    fresh = compile_pipeline(load_config(None, [f"paths.work_dir={tmp_path}"]))
    assert fresh == str(tmp_path / "kubeflow" / "pipeline.yaml")  # the default: under the work dir
    with open(os.path.join(REPO, "kubeflow", "pipeline.yaml"), "rb") as f, open(fresh, "rb") as g:
        assert f.read() == g.read(), "kubeflow/pipeline.yaml is stale: run `make ir` and commit it"
