"""Every knob of transferline, in one typed config.

Defaults run offline on this repository's data with the embedded encoder.
A TOML file overrides them (``--config FILE``), and CLI flags override the file
(``--set section.key=value`` for any knob, or the named flags of each command).
"""
from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field

try:
    import tomllib
except ImportError:  # Python 3.10: the TFX 1.16 image (kubeflow/Dockerfile)
    import tomli as tomllib

from components.encoder import EMBEDDED, PRODUCTION_HANDLE
from components.errors import ConfigError
from components.modes import MODES as TRAINER_MODES

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class EncoderConfig:
    # 'embedded' (offline USE-multilingual-v3 port), a local SavedModel path, or a TF-Hub URL,
    # e.g. https://tfhub.dev/google/universal-sentence-encoder-multilingual/3 in production.
    handle: str = EMBEDDED
    # Where the embedded encoder is built ('' = $TRANSFERLINE_CACHE or ~/.cache/transferline).
    cache_dir: str = ""


@dataclass
class PathsConfig:
    # Training data root: CSV files (columns text,label) under span-N/ folders.
    data_dir: str = os.path.join(REPO_ROOT, "data", "trec")
    # Held-out test set (CSV files, same columns) the Evaluator gates on; '' = the eval split instead.
    test_data_dir: str = os.path.join(REPO_ROOT, "data", "trec-test")
    # The curated schema: the data contract (ImportSchemaGen).
    schema_file: str = os.path.join(REPO_ROOT, "pipelines", "schema", "schema.pbtxt")
    # Pipeline root, MLMD database (SQLite) and run reports live here.
    work_dir: str = os.path.join(REPO_ROOT, "work")
    # TF Serving base directory the Pusher writes <version>/ into; '' = <work_dir>/serving.
    serving_dir: str = ""
    # TFX pipeline root (component outputs); '' = <work_dir>/pipeline_root.
    pipeline_root: str = ""


@dataclass
class DataConfig:
    # Glob, relative to data_dir, of the training CSV files: span-N/ folders, then the files in each.
    file_pattern: str = "span-*/*.csv"
    # Train on the newest this many spans (0 = all of them); the newest span's eval split is evaluated.
    train_spans: int = 0
    # Hash-bucket split of the training data: train:eval buckets.
    train_buckets: int = 4
    eval_buckets: int = 1


@dataclass
class ContractConfig:
    """Data-contract checks beyond the schema (the DataGate halts the run before Transform)."""
    # Longest text accepted, in characters.
    max_text_chars: int = 1000
    # Halt when more than this fraction of rows are exact duplicates of another row.
    max_duplicate_fraction: float = 0.2
    # Drift between the newest span and the one before it (TFDV drift comparators; 0 = off):
    # L-infinity distance between the two label distributions,
    max_label_drift: float = 0.25
    # and Jensen-Shannon divergence between the two text-length (characters) distributions.
    max_length_drift: float = 0.3


@dataclass
class TransformConfig:
    """The wide features Transform adds beside the embedding (components/transform.py)."""
    # Word n-grams of order 1..ngram_max (lower-cased, punctuation split off), weighted by TF-IDF,
    ngram_max: int = 2
    # over a vocabulary of the ngram_vocab_size most frequent in the training data (the rest share one bucket).
    ngram_vocab_size: int = 20000


@dataclass
class TrainerConfig:
    """The Trainer's knobs; run_fn receives this whole section (components/trainer.py)."""
    # The model (README, "The model: head, wide_deep, fine_tune"):
    #   head      a small head on the frozen encoder's embedding;
    #   wide_deep the head plus a linear path over the TF-IDF n-grams, summed before the softmax;
    #   fine_tune the head first, then the encoder itself trained with it at a low rate (kept only when
    #             better on the eval split);
    #   auto      by the number of training examples, from the label-efficiency study (thresholds below).
    mode: str = "auto"
    hidden_units: int = 256
    dropout: float = 0.3
    learning_rate: float = 0.001
    batch_size: int = 64
    # Training stops early when eval loss stops improving for `early_stopping_patience` epochs.
    max_epochs: int = 40
    early_stopping_patience: int = 4
    seed: int = 42
    # wide_deep: L2 penalty on the linear path's weights (per weight, Keras' l2).
    wide_l2: float = 1e-5
    # fine_tune phase 2 (the encoder unfrozen): Adam at this rate, this batch size, at most this many
    # epochs, stopped when eval loss has not improved for fine_tune_patience epochs (best weights kept).
    fine_tune_learning_rate: float = 1e-4
    fine_tune_batch_size: int = 32
    fine_tune_max_epochs: int = 6
    fine_tune_patience: int = 1
    # auto: fine_tune from this many training examples on, wide_deep from the next one, else head.
    auto_fine_tune_min_examples: int = 400
    auto_wide_deep_min_examples: int = 1000000


@dataclass
class GateConfig:
    # Absolute bound: a model below this accuracy is never pushed.
    min_accuracy: float = 0.8
    # No regression: candidate accuracy must be >= served model's accuracy minus this.
    max_accuracy_drop: float = 0.0


@dataclass
class BeamConfig:
    # DirectRunner mode for local runs: multi_processing, multi_threading or in_memory.
    direct_running_mode: str = "multi_processing"
    # DirectRunner workers; 0 = one per CPU.
    direct_num_workers: int = 0
    # Extra Beam pipeline args, passed through as is, e.g. for Flink/Spark/Dataflow:
    # ["--runner=FlinkRunner", "--flink_master=host:8081", "--environment_type=LOOPBACK"].
    # With a --runner here the DirectRunner settings above are not added.
    extra_args: list[str] = field(default_factory=list)


@dataclass
class KubeflowConfig:
    """Production on Kubeflow Pipelines (`transferline compile|submit|schedule`; README, "Running on Kubeflow").

    Locations must be on a filesystem TFX reads and writes from every pod: gs:// (or a volume all pods
    mount). KFP's own minio:// and s3:// roots are not TFX filesystems.
    """
    # The image every task runs in: kubeflow/Dockerfile (this project and its lock on the TFX 1.16 image).
    image: str = "gcr.io/your-project/transferline:0.1.0"
    pipeline_root: str = "gs://your-bucket/transferline/pipeline_root"
    # Training data root (span-N/ folders of CSV files) and held-out test set ('' = gate on the eval split).
    data_dir: str = "gs://your-bucket/transferline/data/trec"
    test_data_dir: str = "gs://your-bucket/transferline/data/trec-test"
    # TF Serving's model base path: the Pusher writes <version>/ here.
    serving_dir: str = "gs://your-bucket/transferline/serving"
    # The TF-Hub USE (pods need internet, or a gs:// copy of it); 'embedded' = the port baked into the image.
    encoder_handle: str = PRODUCTION_HANDLE
    # Where `transferline compile` writes the pipeline IR, relative to the repository root.
    package_path: str = "kubeflow/pipeline.yaml"
    # KFP API endpoint ('' = $KFP_HOST), user namespace ('' = $KFP_NAMESPACE or the cluster's default),
    # the experiment runs are filed under, and the recurring run's schedule (`transferline schedule`):
    # standard 5-field cron, or KFP's 6-field form (seconds first); times are UTC.
    host: str = ""
    namespace: str = ""
    experiment: str = "transferline"
    cron: str = "0 3 * * *"


@dataclass
class ServeConfig:
    """`transferline serve`: a local stand-in for TF Serving's REST API (README, "Serving locally")."""
    # Loopback only by default: this is a development server, not a production one.
    host: str = "127.0.0.1"
    port: int = 8501                 # TF Serving's REST port (0 = any free port, printed at start)
    model_name: str = "transferline"  # the <name> in /v1/models/<name>
    # How often the serving directory is checked for a new (or rolled-back) version, in seconds.
    poll_seconds: float = 2.0
    # Request bodies larger than this are refused (TF Serving-style error), in bytes.
    max_body_bytes: int = 4 * 1024 * 1024
    # Log every request (method, path, status, milliseconds) to stderr.
    log_requests: bool = False


@dataclass
class StudyConfig:
    """`transferline study labels`: the Trainer's modes (head, wide_deep, fine_tune, auto) vs TF-IDF + LR.

    README, "Why transfer learning: the label-efficiency study".
    """
    # Training-set sizes (labels), each drawn stratified from the training data; 0 = all of it.
    sizes: list[int] = field(default_factory=lambda: [100, 500, 0])
    # Seeds per size: each seed draws a different subset, the same one for both models.
    seeds: int = 5
    # Where the tables (JSON) and learning curves (PNG) go, one folder per dataset; '' = <work_dir>/study.
    out_dir: str = ""
    # The datasets: training roots (span-*/ CSV folders; relative = to the repository), each scored on the
    # test set beside it, <root>-test/. [] = paths.data_dir scored on paths.test_data_dir.
    datasets: list[str] = field(default_factory=lambda: ["data/trec", "data/bbc-news"])


@dataclass
class Config:
    pipeline_name: str = "transferline"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    contract: ContractConfig = field(default_factory=ContractConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    beam: BeamConfig = field(default_factory=BeamConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    study: StudyConfig = field(default_factory=StudyConfig)

    @property
    def serving_dir(self) -> str:
        return self.paths.serving_dir or os.path.join(self.paths.work_dir, "serving")

    @property
    def pipeline_root(self) -> str:
        return self.paths.pipeline_root or os.path.join(self.paths.work_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.paths.work_dir, "metadata.sqlite")

    def beam_pipeline_args(self) -> list[str]:
        args = list(self.beam.extra_args)
        if not any(a.startswith("--runner") for a in args):
            workers = 1 if self.beam.direct_running_mode == "in_memory" else self.beam.direct_num_workers
            args += [f"--direct_running_mode={self.beam.direct_running_mode}",
                     f"--direct_num_workers={workers}"]
        return args


def _coerce(value: typing.Any, typ: typing.Any, name: str) -> typing.Any:
    """Checks/converts a TOML or CLI value to the field's declared type."""
    origin = typing.get_origin(typ)
    if origin is list:
        (item,) = typing.get_args(typ)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_coerce(v, item, name) for v in value]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if typ in (int, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return typ(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {typ.__name__}, got {value!r}") from None
    if typ is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{name}: unsupported type {typ}")


def _apply(obj: typing.Any, values: dict, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    known = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(f"unknown setting '{name}'; known here: {', '.join(sorted(known))}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"'{name}' is a section; give it as [{name}] in the file")
            _apply(current, value, f"{name}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], name))


def load_config(path: str | None = None, overrides: typing.Sequence[str] = ()) -> Config:
    """Defaults, then the TOML file at ``path``, then ``section.key=value`` overrides."""
    config = Config()
    if path:
        try:
            with open(path, "rb") as f:
                _apply(config, tomllib.load(f))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        *sections, leaf = key.strip().split(".")
        nested: dict = {leaf: value}
        for s in reversed(sections):
            nested = {s: nested}
        _apply(config, nested)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Value checks the types alone cannot express; raises ConfigError naming the knob."""
    checks = [
        (config.beam.direct_running_mode in ("multi_processing", "multi_threading", "in_memory"),
         "beam.direct_running_mode must be multi_processing, multi_threading or in_memory"),
        (config.beam.direct_num_workers >= 0, "beam.direct_num_workers must be >= 0 (0 = one per CPU)"),
        (config.data.train_buckets > 0 and config.data.eval_buckets > 0,
         "data.train_buckets and data.eval_buckets must be > 0"),
        (config.data.train_spans >= 0, "data.train_spans must be >= 0 (0 = all spans)"),
        (config.data.file_pattern.startswith("span-*/") and len(config.data.file_pattern) > 7,
         "data.file_pattern must be span-*/<files>, e.g. span-*/*.csv (data lands in span-N/ folders)"),
        (0.0 <= config.gate.min_accuracy <= 1.0, "gate.min_accuracy must be within [0, 1]"),
        (config.gate.max_accuracy_drop >= 0.0, "gate.max_accuracy_drop must be >= 0"),
        (0.0 <= config.trainer.dropout < 1.0, "trainer.dropout must be within [0, 1)"),
        (min(config.trainer.hidden_units, config.trainer.batch_size, config.trainer.max_epochs) > 0,
         "trainer.hidden_units, batch_size and max_epochs must be > 0"),
        (config.trainer.learning_rate > 0, "trainer.learning_rate must be > 0"),
        (config.trainer.mode in TRAINER_MODES, f"trainer.mode must be one of {', '.join(TRAINER_MODES)}"),
        (config.trainer.wide_l2 >= 0, "trainer.wide_l2 must be >= 0"),
        (config.trainer.fine_tune_learning_rate > 0, "trainer.fine_tune_learning_rate must be > 0"),
        (min(config.trainer.fine_tune_batch_size, config.trainer.fine_tune_max_epochs) > 0,
         "trainer.fine_tune_batch_size and fine_tune_max_epochs must be > 0"),
        (config.trainer.fine_tune_patience >= 0 and config.trainer.early_stopping_patience >= 0,
         "trainer.fine_tune_patience and early_stopping_patience must be >= 0"),
        (min(config.trainer.auto_fine_tune_min_examples, config.trainer.auto_wide_deep_min_examples) >= 0,
         "trainer.auto_fine_tune_min_examples and auto_wide_deep_min_examples must be >= 0"),
        (config.transform.ngram_max >= 1 and config.transform.ngram_vocab_size >= 1,
         "transform.ngram_max and transform.ngram_vocab_size must be >= 1"),
        (config.contract.max_text_chars > 0, "contract.max_text_chars must be > 0"),
        (0.0 <= config.contract.max_duplicate_fraction <= 1.0, "contract.max_duplicate_fraction must be within [0, 1]"),
        (config.contract.max_label_drift >= 0 and config.contract.max_length_drift >= 0,
         "contract.max_label_drift and max_length_drift must be >= 0 (0 = off)"),
        (0 <= config.serve.port < 65536, "serve.port must be within 0..65535 (0 = any free port)"),
        (config.serve.poll_seconds > 0 and config.serve.max_body_bytes > 0,
         "serve.poll_seconds and serve.max_body_bytes must be > 0"),
        (bool(config.study.sizes) and all(n >= 0 for n in config.study.sizes),
         "study.sizes must be a non-empty list of sizes >= 0 (0 = all the training data)"),
        (config.study.seeds > 0, "study.seeds must be > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def to_toml(config: Config) -> str:
    """The config as TOML (what `transferline config` prints), for a starting file."""
    lines: list[str] = []

    def emit(obj, section):
        scalars = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)
                   if not dataclasses.is_dataclass(getattr(obj, f.name))]
        if section:
            lines.append(f"\n[{section}]")
        for k, v in scalars:
            if isinstance(v, bool):
                lines.append(f"{k} = {str(v).lower()}")
            elif isinstance(v, (int, float)):
                lines.append(f"{k} = {v}")
            elif isinstance(v, list):
                lines.append(f"{k} = [{', '.join(repr(x) if not isinstance(x, str) else _q(x) for x in v)}]")
            else:
                lines.append(f"{k} = {_q(v)}")
        for f in dataclasses.fields(obj):
            sub = getattr(obj, f.name)
            if dataclasses.is_dataclass(sub):
                emit(sub, f"{section}.{f.name}" if section else f.name)

    emit(config, "")
    return "\n".join(lines).lstrip() + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
