"""What a user can get wrong, and the outcomes a script acts on, as exceptions with the CLI's exit code.
The lowest layer: no imports.

The CLI prints a UserError's message in one paragraph and exits with its ``exit_code``; any other
exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix; the message says what and how."""
    exit_code = 2

    def shown(self) -> str:
        """What the CLI prints: the message, less anything carried only for the runner."""
        return str(self)


class ConfigError(UserError, ValueError):
    """A config file, flag or override that cannot be used; the message names the knob."""


class EncoderHandleError(UserError):
    """An encoder handle that does not load or does not embed strings."""


class NoSpans(UserError, ValueError):
    """The data root has no span-N/ folder to train on."""


class DataFileError(UserError, ValueError):
    """`init`: a labelled CSV that cannot start a project (columns, classes, encoding); nothing was created."""


class ProjectExists(UserError):
    """`init`: the folder already holds a project; --force replaces it."""


class NotFound(UserError):
    """Something the command needs does not exist yet: no run, no pushed model, no such version."""


class DataRejected(UserError):
    """The data broke the contract; nothing was trained or pushed. ``problems``: [{"where", "problem", "examples"}].

    Raised inside a component, it may reach the CLI wrapped by the runner: the problems travel in the
    message too, and ``from_message`` rebuilds the error from it.
    """
    exit_code = 3

    def __init__(self, problems: list):
        import json

        self.problems = problems
        super().__init__("the data was rejected:\n" + format_problems(problems)
                         + "\n__problems__=" + json.dumps(problems))

    def shown(self) -> str:
        return "the data was rejected:\n" + format_problems(self.problems)

    @classmethod
    def from_message(cls, message: str) -> "DataRejected | None":
        import json

        marker = message.rfind("__problems__=")
        return cls(json.loads(message[marker + len("__problems__="):])) if marker >= 0 else None


def format_problems(problems: list, most: int = 20) -> str:
    """The problems as indented lines: where, what, and up to three examples each; the first ``most`` only
    (a 1,000-column file is one problem per column to TFDV)."""
    lines = []
    for p in problems[:most]:
        lines.append(f"  - {p['where']}: {p['problem']}")
        for e in p["examples"]:
            lines.append(f"      e.g. {e!r}")
    if len(problems) > most:
        lines.append(f"  ... and {len(problems) - most:,} more problem(s) like these")
    return "\n".join(lines)


def _written_file(error: BaseException) -> str | None:
    """The file a failed write() was writing (its OSError carries no file name): the innermost file object
    open for writing among the failing frames' variables."""
    import io

    tb, found = error.__traceback__, None
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str) and any(
                    c in getattr(value, "mode", "") for c in "wax+"):
                found = value.name
        tb = tb.tb_next
    return found


class StorageError(UserError):
    """A path the command must write cannot be: the disk or the quota is full, the file is over the size
    limit, the file system is read-only. The message names the path and, where knowable, the free space."""

    _WHY = {"ENOSPC": "the disk is full", "EDQUOT": "the disk quota is exhausted",
            "EFBIG": "the file is over the size limit (ulimit -f)", "EROFS": "the file system is read-only"}

    @classmethod
    def from_exception(cls, error: BaseException) -> "StorageError | None":
        """The storage failure behind ``error`` (itself, a cause or context, or one a runner flattened into
        its message as "[Errno 28] No space left on device: 'path'"), as one line; None if there is none."""
        import errno
        import os
        import re
        import shutil

        codes = {getattr(errno, name): why for name, why in cls._WHY.items() if hasattr(errno, name)}
        seen, found = set(), None
        while error is not None and id(error) not in seen and found is None:
            seen.add(id(error))
            if isinstance(error, OSError) and error.errno in codes:
                found = (error.errno, error.filename)
            else:
                m = re.search(r"\[Errno (\d+)\][^'\n]*(?:'([^'\n]*)')?", str(error))
                if m and int(m.group(1)) in codes:
                    found = (int(m.group(1)), m.group(2))
            failed, error = error, error.__cause__ or error.__context__
        if found is None:
            return None
        code, path = found
        path = path or _written_file(failed)
        free = ""
        probe = os.path.abspath(str(path)) if path else os.getcwd()
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe) if os.path.dirname(probe) != probe else ""
        if probe and code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            free = f"; {shutil.disk_usage(probe).free / 2**20:,.0f} MiB free there now"
        fix = {errno.EROFS: "choose a writable --work-dir", errno.EFBIG: "raise the limit and run the command again"
               }.get(code, "free some space (or choose another --work-dir) and run the command again")
        return cls(f"cannot write {path or 'a file'}: {codes[code]}{free}; {fix}")


class KubeflowError(UserError):
    """Kubeflow Pipelines could not be reached or refused a request."""
    exit_code = 4


class KubeflowContractError(UserError):
    """A Kubeflow task got an executor input it cannot run (pipelines/kubeflow_entrypoint.py says why)."""


# ---------------------------------------------------------------------------------------- outcomes
class Outcome(Exception):
    """Not a mistake: a result a script or an alert acts on, by its exit code (the CLI prints the message
    without "error:"). `monitor`'s Drift and NotEnoughTraffic are in ops/loop/verdicts.py."""
    exit_code = 1


class Busy(Outcome):
    """Another run or rollback holds the work dir; nothing was done."""
    exit_code = 5
