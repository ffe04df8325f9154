"""The whole pipeline on Beam's portability path: PortableRunner -> a local job service -> an external SDK
worker pool, each its own process on loopback (bench/portable.py). This is how Flink and Spark run Python
Beam pipelines; README, "Benchmarks", says what this proves and what only a cluster can show."""
import os

import pytest

from bench import portable
from conftest import TEST_CSV, TRAIN_CSV, PipelineRuns, read_rows, stratified, write_csv

pytestmark = pytest.mark.slow

# The Beam-powered components: each submits its own Beam job, which needs an SDK worker from the pool.
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")


@pytest.fixture(scope="module")
def portable_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("portable")
    write_csv(str(root / "data" / "span-1" / "questions.csv"), stratified(read_rows(TRAIN_CSV), 150))
    write_csv(str(root / "test" / "questions.csv"), stratified(read_rows(TEST_CSV), 60, seed=1))
    with portable.services() as beam:
        runs = PipelineRuns(root, root / "data", root / "test",
                            extra=[f"--beam-arg={a}" for a in beam.args]
                            # What is tested is the runner path, not the model: a tiny slice, always pushed.
                            + ["--set", "trainer.max_epochs=5", "--set", "gate.min_accuracy=0.0",
                               "--set", "gate.beat_references=false"])
        runs.run()
        runs.workers, runs.pool_log, runs.job_log = beam.workers_started(), beam.pool_log(), beam.job_log()
    return runs


def test_whole_pipeline_runs_through_job_service_and_worker_pool(portable_run):
    summary = portable_run.summary()
    assert set(summary.executions.values()) == {"COMPLETE"}, summary.executions
    assert os.listdir(portable_run.serving_dir), "the portable run pushed nothing"
    # Each Beam component's job got its SDK worker from the external pool: none ran in the runner's process.
    assert portable_run.workers >= len(BEAM_COMPONENTS), portable_run.pool_log[-3000:]


def test_portable_args_replace_the_direct_runner(portable_run):
    from pipelines.work_dir import WorkDir

    logs = os.listdir(WorkDir(portable_run.work_dir).logs)
    with open(os.path.join(WorkDir(portable_run.work_dir).logs, logs[-1]), encoding="utf-8", errors="replace") as f:
        text = f.read()
    args_line = next(line for line in text.splitlines() if "Beam args" in line)
    assert "--runner=PortableRunner" in args_line and "--direct_running_mode" not in args_line, args_line
