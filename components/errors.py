"""What a user can get wrong, and the outcomes a script acts on, as exceptions with the CLI's exit code.
The lowest layer: no imports.

The CLI prints a UserError's message in one paragraph and exits with its ``exit_code``; any other
exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix; the message says what and how."""
    exit_code = 2


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

    @classmethod
    def from_message(cls, message: str) -> "DataRejected | None":
        import json

        marker = message.rfind("__problems__=")
        return cls(json.loads(message[marker + len("__problems__="):])) if marker >= 0 else None


def format_problems(problems: list) -> str:
    """The problems as indented lines: where, what, and up to three examples each."""
    lines = []
    for p in problems:
        lines.append(f"  - {p['where']}: {p['problem']}")
        for e in p["examples"]:
            lines.append(f"      e.g. {e!r}")
    return "\n".join(lines)


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
