"""Forks one process per KFP task from an interpreter that has already imported TF/TFX (~20 s each here).

Protocol, one JSON line each way: {"module", "argv", "env", "cwd", "log", "standin"} -> {"returncode"}.
The child runs `python -m <module> <argv>` as runpy does (sys.argv, __main__), with stdout and stderr
in `log`; nothing in the parent executes a TF op before forking, so each child starts TF afresh.
"""
import json
import os
import runpy
import sys
import traceback

# The heavy imports every task repeats; import only (no TF op runs here).
import tensorflow  # noqa: F401,E402
import tensorflow_hub  # noqa: F401,E402
import tensorflow_text  # noqa: F401,E402
import tensorflow_transform  # noqa: F401,E402
import tensorflow_model_analysis  # noqa: F401,E402
import tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor  # noqa: F401,E402
import tfx.components.evaluator.executor  # noqa: F401,E402
import tfx.components.transform.executor  # noqa: F401,E402
import tfx.components.trainer.executor  # noqa: F401,E402
from tfx import v1  # noqa: F401,E402
import pipelines.pipeline  # noqa: F401,E402  (every component module)


def child(req: dict) -> int:
    fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(req["cwd"])
    os.environ.update(req["env"])
    if req.get("standin"):
        import kfp_faithful

        kfp_faithful.install_standin(req["standin"])
    sys.argv = [req["module"], *req["argv"]]
    try:
        runpy.run_module(req["module"], run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
        return 1


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(req)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
