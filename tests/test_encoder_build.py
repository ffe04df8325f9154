"""`transferline encoder build`: idempotent, atomic, configurable cache, prints where it went."""
import os
import subprocess
import sys

import pytest

from components import encoder as enc

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines


def test_build_goes_to_the_configured_cache_and_is_idempotent(tmp_path):
    logs = []
    path = enc.build_embedded_encoder(str(tmp_path), log=logs.append)
    assert path.startswith(str(tmp_path)) and os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert oct(os.stat(path).st_mode & 0o777) == "0o755"
    mtime = os.stat(os.path.join(path, "saved_model.pb")).st_mtime_ns
    assert enc.build_embedded_encoder(str(tmp_path), log=logs.append) == path
    assert os.stat(os.path.join(path, "saved_model.pb")).st_mtime_ns == mtime  # reused, not rebuilt
    assert "already built" in logs[-1]
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no temp leftovers


def test_failed_build_leaves_nothing_behind(tmp_path, monkeypatch):
    from components import use_m3_graph

    def boom(model, export_dir):
        os.makedirs(os.path.join(export_dir, "variables"))  # half-written, then the build dies
        raise RuntimeError("disk full")

    monkeypatch.setattr(use_m3_graph, "save_hub_module", boom)
    with pytest.raises(RuntimeError):
        enc.build_embedded_encoder(str(tmp_path), log=lambda m: None)
    assert os.listdir(tmp_path / "encoders") == []
    with pytest.raises(enc.EncoderHandleError):
        enc.resolve_handle(enc.embedded_encoder_dir(str(tmp_path)))


def test_cli_build_prints_the_path_last(encoder_dir):
    result = subprocess.run([sys.executable, "-m", "ops.cli", "encoder", "build"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == encoder_dir
