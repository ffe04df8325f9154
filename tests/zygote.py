"""Forks one process per command from an interpreter that has already imported TF/TFX (~12 CPU s a
process here), so that a test's `transferline …` or KFP task skips that cost.

Run as a script it is the server; `Zygote` is its client. Protocol, one JSON line each way:
{"module", "argv", "env", "cwd", "stdout", "stderr", "standin"?, "fast_exit"?} -> {"pid"}, then
{"returncode"}. The child runs `python -m <module> <argv>` as runpy does (sys.argv, __main__), its stdin
/dev/null, and exits through the interpreter's normal shutdown (atexit, finalizers) as a fresh `python`
would; with "fast_exit" (the KFP harness's tasks, whose outputs are files written and closed before the
task returns) it runs the atexit handlers, flushes and leaves with os._exit. Nothing
here runs a TF op before forking, so each child starts TF afresh. Only third-party libraries are
preloaded (TFX's executors import tensorflow_text, so its ops are registered as in any run); our own
modules are imported by the child itself, so a missing import of ours still fails the test.
"""
import atexit
import gc
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
# Read when TF/Python start, so a child cannot change them: a request that differs runs as a plain process.
START_ENV = ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "PYTHONWARNINGS",
             "TF_ENABLE_ONEDNN_OPTS")


def preload() -> None:
    """The heavy imports every command repeats; import only (no TF op runs here)."""
    import apache_beam  # noqa: F401
    import tensorflow  # noqa: F401
    import tensorflow_model_analysis  # noqa: F401
    import tensorflow_transform  # noqa: F401
    import tfx.components.evaluator.executor  # noqa: F401
    import tfx.components.trainer.executor  # noqa: F401
    import tfx.components.transform.executor  # noqa: F401
    import tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor  # noqa: F401
    from tfx import v1  # noqa: F401


def child(req: dict) -> int:
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        if fd == 2 and path == req["stdout"]:
            os.dup2(1, 2)
            continue
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    if req.get("standin"):
        import kfp_faithful

        kfp_faithful.install_standin(req["standin"])
    sys.argv = [req["module"], *req["argv"]]
    sys.path[0] = req["cwd"]  # as `python -m` does (the server's was this folder, still on PYTHONPATH)
    try:
        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
        return 1


def serve() -> int:
    # The preloaded objects in the permanent generation: a child's collections never walk (or write to, so
    # copy) them, as the gc module's documentation advises for fork without exec.
    gc.freeze()
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            code = child(req)
            if not req.get("fast_exit"):
                return code  # -> sys.exit: the child's normal interpreter shutdown
            atexit._run_exitfuncs()  # pylint: disable=protected-access
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # skips freeing TF's objects: ~3 CPU s a process
        out.write(json.dumps({"pid": pid}) + "\n")
        out.flush()
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()
    return 0


class Zygote:
    """tests/zygote.py as a subprocess, started with `env` over this process's environment."""

    def __init__(self, env: dict | None = None):
        self.env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
            [HERE, os.path.dirname(HERE), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "zygote.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=HERE, env=self.env)
        self._buf = b""

    def accepts(self, env: dict) -> bool:
        """Whether a child can have `env`: the variables read at start equal the server's."""
        return all(env.get(k) == self.env.get(k) for k in START_ENV)

    def run(self, module: str, argv: list[str], env: dict, cwd: str, stdout: str, stderr: str | None = None,
            standin: str | None = None, timeout: float | None = None, fast_exit: bool = False) -> int:
        """`python -m module argv` in a forked child with exactly `env`; stderr None: into stdout. Raises
        subprocess.TimeoutExpired (the child killed) after `timeout` seconds."""
        self.proc.stdin.write(json.dumps({"module": module, "argv": argv, "env": env, "cwd": cwd, "stdout": stdout,
                                          "stderr": stderr or stdout, "standin": standin,
                                          "fast_exit": fast_exit}).encode() + b"\n")
        self.proc.stdin.flush()
        pid = self._reply("pid", None)
        try:
            return self._reply("returncode", timeout)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            self._reply("returncode", None)
            raise subprocess.TimeoutExpired([module, *argv], timeout) from None

    def _reply(self, key: str, timeout: float | None):
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:  # unbuffered reads: select must not miss a line already read
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(key, timeout)
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("tests/zygote.py died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)[key]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


if __name__ == "__main__":
    preload()
    sys.exit(serve())
