"""`transferline schema propose | adopt`: infer a candidate schema from data with TFX's SchemaGen, diff it;
adopt a reviewed proposal as the project's contract.

The schema is the data contract and changes only by a human's decision. `propose` runs CsvExampleGen →
StatisticsGen → SchemaGen on the data in a scratch pipeline, writes the inferred schema next to nothing it
could overwrite, and prints a unified diff against the contract for review. `adopt` takes the proposal's
value domains (the classes, for the day a new class arrives on purpose) into the contract and keeps the
contract's curated constraints and comments, after a backup, printing the diff.
"""
from __future__ import annotations

import datetime
import difflib
import os
import shutil
import tempfile

from components import names
from components.names import LABEL
from ops.args import add_config_args, config_from, refuse_repository_write, say
from pipelines.config import Config


def register(sub) -> None:
    schema = sub.add_parser("schema", help="the data contract: propose a schema from new data, adopt a proposal")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    p = schema_sub.add_parser("propose", help="infer a schema with SchemaGen and diff it against the checked-in one")
    add_config_args(p, work_dir="where the proposal is written (schema/proposed.pbtxt)",
                    data="data root to infer from (default: paths.data_dir)")
    p.add_argument("--out", metavar="FILE", help="write the proposed schema here instead")
    p.set_defaults(func=command)
    a = schema_sub.add_parser("adopt", help="take a proposal's classes (value domains) into the contract, "
                                            "with a backup and a diff")
    add_config_args(a, work_dir="where `schema propose` wrote its proposal")
    a.add_argument("--proposal", metavar="FILE", help="the proposed schema (default: <work dir>/schema/proposed.pbtxt)")
    a.set_defaults(func=adopt_command)


def _proposal_path(config: Config) -> str:
    return config.work.proposed_schema


def command(args) -> int:
    config = config_from(args)
    out = os.path.abspath(args.out or _proposal_path(config))
    say(f"inferring a schema from {config.paths.data_dir} with SchemaGen ...")
    diff = propose_schema(config, out)
    print(diff if diff else "the inferred schema matches the checked-in one")
    say(f"proposed schema: {out}")
    say(f"review the diff; to adopt its classes: transferline schema adopt{' --proposal ' + out if args.out else ''} "
        f"(or edit {config.paths.schema_file} by hand)")
    return 0


def adopt_command(args) -> int:
    config = config_from(args)
    proposal = os.path.abspath(args.proposal or _proposal_path(config))
    refuse_repository_write(config.paths.schema_file, "the schema")
    diff, backup = adopt_schema(config.paths.schema_file, proposal)
    if not diff:
        print(f"{config.paths.schema_file} already has the proposal's value domains; nothing changed")
        return 0
    print(diff)
    say(f"adopted {proposal} into {config.paths.schema_file}; the previous contract: {backup}")
    say("the next run checks the data against it (and retrains: the label vocabulary changed)")
    return 0


def adopt_schema(schema_file: str, proposal: str) -> tuple[str, str | None]:
    """Replaces the contract's string domains by the proposal's (same names; new ones added), keeping every
    other constraint and the contract's leading comment; backs the old file up first.
    Returns (the unified diff, the backup's path); ("", None) when nothing would change."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.errors import NotFound, UserError

    if not os.path.exists(proposal):
        raise NotFound(f"no proposal at {proposal}; run `transferline schema propose` first (or give --proposal)")
    current, proposed = (_parse(path) for path in (schema_file, proposal))
    adopted = schema_pb2.Schema()
    adopted.CopyFrom(current)
    domains = {d.name: d for d in adopted.string_domain}
    for domain in proposed.string_domain:
        if domain.name in domains:
            domains[domain.name].ClearField("value")
            domains[domain.name].value.extend(sorted(domain.value))
        else:
            adopted.string_domain.add().CopyFrom(domain)
    label = next((d for d in adopted.string_domain if d.name == LABEL), None)
    if label is not None and len(label.value) < 2:
        raise UserError(f"{proposal}: its label domain has {len(label.value)} class(es); a classifier needs 2")
    if adopted == current:
        return "", None
    with open(schema_file, encoding="utf-8") as f:
        old_text = f.read()
    comment = "".join(line for line in old_text.splitlines(keepends=True)[:50] if line.startswith("#")
                      ) if old_text.startswith("#") else ""
    new_text = comment + text_format.MessageToString(adopted)
    backup = f"{schema_file}.{datetime.datetime.now():%Y%m%d-%H%M%S}.bak"
    shutil.copyfile(schema_file, backup)
    with open(schema_file + ".tmp", "w", encoding="utf-8") as f:
        f.write(new_text)
    os.replace(schema_file + ".tmp", schema_file)
    return "".join(difflib.unified_diff(str(current).splitlines(keepends=True), str(adopted).splitlines(keepends=True),
                                        fromfile=f"{schema_file} (before; backup {backup})",
                                        tofile=f"{schema_file} (adopted)")), backup


def add_classes(schema_file: str, classes: list[str]) -> tuple[str, str | None]:
    """Adds ``classes`` to the contract's label domain, as adopting a proposal would (backup, diff)."""
    import tempfile

    from google.protobuf import text_format

    schema = _parse(schema_file)
    label = next(d for d in schema.string_domain if d.name == LABEL)
    label.value.extend(c for c in classes if c not in label.value)
    with tempfile.NamedTemporaryFile("w", suffix=".pbtxt", delete=False) as f:
        f.write(text_format.MessageToString(schema))
    try:
        return adopt_schema(schema_file, f.name)
    finally:
        os.unlink(f.name)


def _parse(path: str):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(path, encoding="utf-8") as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _normalised(path: str) -> str:
    """The schema as protobuf text without comments or formatting choices, for a fair diff."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    return str(io_utils.parse_pbtxt_file(path, schema_pb2.Schema()))


def propose_schema(config: Config, out_path: str) -> str:
    """Infers a schema from config.paths.data_dir, writes it to out_path, returns the diff text."""
    from tfx import v1 as tfx
    from tfx.utils import io_utils

    with tempfile.TemporaryDirectory(prefix="transferline-schema-") as tmp:
        example_gen = tfx.components.CsvExampleGen(
            input_base=config.paths.data_dir,
            input_config=tfx.proto.Input(splits=[
                tfx.proto.Input.Split(name=names.TRAIN_SPLIT, pattern=config.data.file_pattern)]),
            output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
                tfx.proto.SplitConfig.Split(name=names.TRAIN_SPLIT, hash_buckets=1)])))
        statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
        schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                              infer_feature_shape=True)
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name="transferline-schema",
            pipeline_root=os.path.join(tmp, "root"),
            components=[example_gen, statistics_gen, schema_gen],
            enable_cache=False,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                os.path.join(tmp, "metadata.sqlite")),
            beam_pipeline_args=["--direct_running_mode=in_memory"]))
        inferred = os.path.join(tmp, "root", "SchemaGen", "schema")
        (run_dir,) = os.listdir(inferred)
        inferred_file = os.path.join(inferred, run_dir, "schema.pbtxt")
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        io_utils.copy_file(inferred_file, out_path, overwrite=True)
    return "".join(difflib.unified_diff(
        _normalised(config.paths.schema_file).splitlines(keepends=True),
        _normalised(out_path).splitlines(keepends=True),
        fromfile=f"{config.paths.schema_file} (checked in)", tofile=f"{out_path} (inferred)"))
