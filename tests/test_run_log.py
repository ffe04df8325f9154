"""A run's terminal shows our lines; TF/TFX/Beam output, from this process or its children, goes to the log."""
import os
import subprocess
import sys

from pipelines import run_log


def test_stderr_and_child_processes_go_to_the_log_and_progress_to_the_terminal(tmp_path, capfd):
    with run_log.captured(str(tmp_path), verbose=False) as log:
        os.write(2, b"C++ noise on fd 2\n")
        print("Python noise on stderr", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('worker noise\\n')"], check=True)
        print("[transferline] ours", file=log.out, flush=True)
    out, err = capfd.readouterr()
    assert "ours" in err and "noise" not in err
    with open(log.path, encoding="utf-8") as f:
        text = f.read()
    assert {"C++ noise", "Python noise", "worker noise"} <= {line.split(" on ")[0] for line in text.splitlines()}
    assert os.path.dirname(log.path) == os.path.join(str(tmp_path), "logs")
    print("after", file=sys.stderr, flush=True)  # stderr is back
    assert "after" in capfd.readouterr().err


def test_component_progress_lines_and_durations(tmp_path, capfd):
    import logging

    with run_log.captured(str(tmp_path), verbose=False) as log:
        absl = logging.getLogger("absl")
        absl.info("Component %s is running.", "Trainer")
        absl.info("Component %s is finished.", "Trainer")
        absl.info("Some TFX chatter %s", "x")
    err = capfd.readouterr().err
    assert "Trainer                running ..." in err and "Trainer                done in" in err
    assert "chatter" not in err and set(log.progress.durations) == {"Trainer"}


def test_verbose_keeps_everything_on_the_terminal(tmp_path, capfd):
    with run_log.captured(str(tmp_path), verbose=True) as log:
        os.write(2, b"visible\n")
    assert log.path is None and "visible" in capfd.readouterr().err
