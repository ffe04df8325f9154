"""Encoder handles: bad ones fail with a message that names them and points at the embedded encoder."""
import pytest

from components import encoder as enc
from conftest import run_cli

pytestmark = pytest.mark.slow  # loads TF models, compiles or runs pipelines


def _assert_helpful(message, handle):
    assert f"'{handle}'" in message
    assert "embedded" in message and "transferline encoder build" in message


@pytest.mark.parametrize("kind", ["missing", "not_savedmodel", "file"])
def test_bad_local_handles(tmp_path, kind):
    handle = {"missing": str(tmp_path / "nope"), "not_savedmodel": str(tmp_path)}.get(kind)
    if kind == "file":
        handle = str(tmp_path / "model.txt")
        open(handle, "w").close()
    with pytest.raises(enc.EncoderHandleError) as err:
        enc.load_encoder(handle)
    _assert_helpful(str(err.value), handle)


def test_unreachable_url_names_the_handle():
    handle = "http://127.0.0.1:9/google/universal-sentence-encoder-multilingual/3"  # refused at once
    with pytest.raises(enc.EncoderHandleError) as err:
        enc.load_encoder(handle)
    _assert_helpful(str(err.value), handle)
    assert "internet" in str(err.value)


def test_corrupt_savedmodel(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(enc.EncoderHandleError) as err:
        enc.load_encoder(str(tmp_path))
    _assert_helpful(str(err.value), str(tmp_path))


def test_embedded_and_path_handles_resolve_to_the_build(encoder_dir):
    assert enc.resolve_handle("embedded") == encoder_dir
    assert enc.resolve_handle("") == encoder_dir
    assert enc.resolve_handle(encoder_dir) == encoder_dir
    assert enc.resolve_handle(enc.PRODUCTION_HANDLE) == enc.PRODUCTION_HANDLE  # not fetched here


def test_cli_reports_a_bad_handle_without_a_traceback(tmp_path):
    result = run_cli("encoder", "check", "--encoder-handle", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"transferline: error: Encoder handle '{tmp_path / 'missing'}' does not exist" in result.stderr


def test_cli_check_accepts_the_embedded_encoder(encoder_dir):
    result = run_cli("encoder", "check")
    assert result.returncode == 0, result.stderr
    assert "512-d float32" in result.stdout
