"""The work dir's layout, in one place: every path a run, a command or a test builds under paths.work_dir.

    <work_dir>/metadata.sqlite        MLMD (SQLite)
    <work_dir>/pipeline_root/         TFX's artifacts (paths.pipeline_root overrides)
    <work_dir>/serving/               the pushed versions TF Serving serves (paths.serving_dir overrides)
    <work_dir>/schema/                the content-addressed staged schema; proposed.pbtxt (`schema propose`)
    <work_dir>/reports/<run id>/      summary.json, report.html; rollbacks.jsonl beside the runs' folders
    <work_dir>/logs/                  one file per run: what TF, TFX and Beam printed
    <work_dir>/requests/              the request log `serve` writes (request_log.dir overrides)
    <work_dir>/monitor/<time>/        each `monitor` check (monitor.out_dir overrides)
    <work_dir>/canary/<time>/         each `canary` verdict (rollout.out_dir overrides)
    <work_dir>/study/                 `study labels | active` (study.out_dir, active.out_dir override)
    <work_dir>/to-label/              `label-next`'s CSV files of texts to label
    <work_dir>/kubeflow/pipeline.yaml `transferline compile`'s default output (`make ir` writes kubeflow/)
    <work_dir>/.lock                  the work dir's lock (pipelines/work_lock.py)
    <work_dir>/root.json              where the work dir was when a run last used it (pipelines/relocate.py)
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkDir:
    root: str
    serving_dir: str = ""    # paths.serving_dir ('' = <root>/serving)
    pipeline_root: str = ""  # paths.pipeline_root ('' = <root>/pipeline_root)
    requests_dir: str = ""   # request_log.dir ('' = <root>/requests)
    monitor_dir: str = ""    # monitor.out_dir ('' = <root>/monitor)
    study_dir: str = ""      # study.out_dir ('' = <root>/study)
    active_dir: str = ""     # active.out_dir ('' = <root>/study)
    canary_dir: str = ""     # rollout.out_dir ('' = <root>/canary)

    def __post_init__(self):
        defaults = {"serving_dir": "serving", "pipeline_root": "pipeline_root", "requests_dir": "requests",
                    "monitor_dir": "monitor", "study_dir": "study", "active_dir": "study",
                    "canary_dir": "canary"}
        for field, folder in defaults.items():
            if not getattr(self, field):
                object.__setattr__(self, field, os.path.join(self.root, folder))

    @property
    def metadata(self) -> str:
        return os.path.join(self.root, "metadata.sqlite")

    @property
    def schema_dir(self) -> str:
        return os.path.join(self.root, "schema")

    @property
    def proposed_schema(self) -> str:
        return os.path.join(self.schema_dir, "proposed.pbtxt")

    def reports(self, run_id: str = "") -> str:
        """<root>/reports[/<run id>]."""
        return os.path.join(self.root, "reports", run_id) if run_id else os.path.join(self.root, "reports")

    @property
    def rollbacks_log(self) -> str:
        return os.path.join(self.reports(), "rollbacks.jsonl")

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def to_label(self) -> str:
        """`label-next`'s CSV files of texts to label."""
        return os.path.join(self.root, "to-label")

    @property
    def compiled_pipeline(self) -> str:
        return os.path.join(self.root, "kubeflow", "pipeline.yaml")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, ".lock")
