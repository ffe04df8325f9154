"""tests/zygote.py, which forks the tests' CLI runs and KFP tasks: a child must behave as `python -m` would
(argv, env, cwd, exit code, separate stdout and stderr, atexit), import our modules itself, and be killed
on timeout without losing the server."""
import subprocess

import pytest

from zygote import Zygote

pytestmark = pytest.mark.slow

PROBE = '''import atexit, os, sys
print("argv", sys.argv[1:], "cwd", os.getcwd(), "env", os.environ.get("PROBE_VALUE"))
print("preloaded", "tensorflow" in sys.modules, "ours", any(m in sys.modules for m in ("pipelines", "components", "ops")))
print("to stderr", file=sys.stderr)
atexit.register(lambda: print("atexit ran"))
if sys.argv[1:] == ["sleep"]:
    import time
    time.sleep(60)
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
'''


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()


@pytest.mark.parametrize("fast_exit", [False, True])
def test_a_child_runs_as_python_dash_m_would(zygote, tmp_path, fast_exit):
    (tmp_path / "probe.py").write_text(PROBE)
    out, err = tmp_path / "out", tmp_path / "err"
    code = zygote.run("probe", ["a b", "3"], {**zygote.env, "PROBE_VALUE": "x"}, str(tmp_path), str(out), str(err),
                      fast_exit=fast_exit)
    assert code == 3
    lines = out.read_text().splitlines()
    assert lines[0] == f"argv ['a b', '3'] cwd {tmp_path} env x"
    # TF was imported before the fork; our modules were not (a missing import of ours still fails).
    assert lines[1] == "preloaded True ours False"
    assert lines[2] == "atexit ran"  # both exits run the atexit handlers and flush
    assert err.read_text() == "to stderr\n"


def test_a_child_past_its_timeout_is_killed_and_the_server_goes_on(zygote, tmp_path):
    (tmp_path / "probe.py").write_text(PROBE)
    log = str(tmp_path / "log")
    with pytest.raises(subprocess.TimeoutExpired):
        zygote.run("probe", ["sleep"], zygote.env, str(tmp_path), log, timeout=2)
    assert zygote.run("probe", ["0"], zygote.env, str(tmp_path), log) == 0


def test_a_request_with_another_start_environment_is_refused(zygote):
    """Variables TF reads when it starts cannot change in a child: run_cli then starts a plain process."""
    assert zygote.accepts(dict(zygote.env))
    assert not zygote.accepts({**zygote.env, "TF_USE_LEGACY_KERAS": "0"})
