"""`transferline schema propose`: infer a candidate schema from data with TFX's SchemaGen, diff it.

The checked-in schema is the data contract and changes only by a human's hand.
This runs CsvExampleGen → StatisticsGen → SchemaGen on the data in a scratch
pipeline, writes the inferred schema next to nothing it could overwrite, and
prints a unified diff against the checked-in one for review.
"""
from __future__ import annotations

import difflib
import os
import tempfile

from ops.args import add_config_args, config_from, say
from pipelines.config import Config


def register(sub) -> None:
    schema = sub.add_parser("schema", help="the data contract: propose a schema from new data")
    schema_sub = schema.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    p = schema_sub.add_parser("propose", help="infer a schema with SchemaGen and diff it against the checked-in one")
    add_config_args(p, work_dir="where the proposal is written (schema/proposed.pbtxt)",
                    data="data root to infer from (default: paths.data_dir)")
    p.add_argument("--out", metavar="FILE", help="write the proposed schema here instead")
    p.set_defaults(func=command)


def command(args) -> int:
    config = config_from(args)
    out = os.path.abspath(args.out or os.path.join(config.paths.work_dir, "schema", "proposed.pbtxt"))
    say(f"inferring a schema from {config.paths.data_dir} with SchemaGen ...")
    diff = propose_schema(config, out)
    print(diff if diff else "the inferred schema matches the checked-in one")
    say(f"proposed schema: {out}")
    say(f"review the diff; to adopt, edit {config.paths.schema_file} by hand (keep its curated constraints)")
    return 0


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
                tfx.proto.Input.Split(name="train", pattern=config.data.file_pattern)]),
            output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
                tfx.proto.SplitConfig.Split(name="train", hash_buckets=1)])))
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
