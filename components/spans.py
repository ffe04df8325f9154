"""Spans: labelled data lands as span-N/ folders; each run chooses its spans explicitly, at run time.

The pipeline's ExampleGen (id CsvExampleGen) is TFX's FileBasedExampleGen with SpanCsvExecutor, TFX's CSV
executor made span-aware, so the choice is made the same way by every runner: the ExampleGen span driver
and Resolver nodes do not run on open-source Kubeflow. The executor lists span-N/ under the data root,
takes the newest `window` spans (0 = all), and writes

    train   every row of the older spans in the window + the newest span's train buckets
    eval    the newest span's eval buckets (Trainer early stopping; part of the gate)
    test    the fixed held-out test set, if one is configured (the rest of the gate)

The chosen spans are recorded on the Examples artifact (MLMD): `span` = the newest, custom property
`spans` = all of them, e.g. "2,3"; `skipped_spans` = span folders with no data file yet (see `choose`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re

import apache_beam as beam
from tfx.components.example_gen import base_example_gen_executor, utils
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from google.protobuf import struct_pb2

from components.errors import NoSpans
from components.names import (DATA_FINGERPRINT, EVAL_SPANS, EVAL_SPLIT, LABEL, MIN_EVAL_ROWS, SKIPPED_SPANS, SPANS,
                              TEST_SPLIT, TEXT, TRAIN_SPLIT)
from components.span_folders import choose, eval_source, no_spans_message, skipped_message  # noqa: F401  (TF-free)

_SPAN_DIR = re.compile(r"^span-(\d+)$")


def span_dirs(data_dir: str) -> dict[int, str]:
    """span number -> folder, for the span-N folders under data_dir."""
    spans = {}
    for name in fileio.listdir(data_dir) if fileio.exists(data_dir) else []:
        m = _SPAN_DIR.match(name.rstrip("/"))
        if m and fileio.isdir(os.path.join(data_dir, name)):
            spans[int(m.group(1))] = os.path.join(data_dir, name.rstrip("/"))
    return spans


def span_files(data_dir: str, files: str) -> dict[int, list[str]]:
    """span number -> the names of its files matching `files` (e.g. "*.csv"), for every span-N folder."""
    return {n: sorted(os.path.basename(p.rstrip("/")) for p in fileio.glob(os.path.join(folder, files)))
            for n, folder in span_dirs(data_dir).items()}


def span_data_dirs(data_dir: str, files: str) -> dict[int, str]:
    """The span-N folders holding at least one data file: a folder still being filled is not a span yet."""
    with_data = {n for n, names_ in span_files(data_dir, files).items() if names_}
    return {n: folder for n, folder in span_dirs(data_dir).items() if n in with_data}


def choose_spans(data_dir: str, window: int = 0, files: str = "*.csv") -> list[int]:
    """The newest `window` span numbers under data_dir that hold data files (0 = all), oldest first."""
    listing = span_files(data_dir, files)
    spans, skipped = choose(listing, window)
    if not spans:
        raise NoSpans(no_spans_message(data_dir, skipped, files))
    return spans


def count_csv_rows(folder: str, files: str, enough: int | None = None) -> int:
    """Data rows in a span folder's CSV files (quoted newlines counted once, as CSV readers do), counted no
    further than ``enough``: a large span is not read whole just to learn that it is large."""
    import codecs
    import csv
    import itertools

    total = 0
    for path in fileio.glob(os.path.join(folder, files)):
        with fileio.open(path, "rb") as f:  # line by line: stops reading once there are enough
            rows = csv.DictReader(codecs.iterdecode(f, "utf-8-sig", errors="replace"))
            total += sum(1 for _ in itertools.islice(rows, None if enough is None else enough - total))
        if enough is not None and total >= enough:
            break
    return total


def span_examples(folder: str, files: str) -> list:
    """The tf.Examples TFX's CSV ExampleGen makes of a folder's files, made by its own pieces in this process
    (its file reader, CSV line parser, column-type inference and Example conversion; no Beam pipeline): what
    the next run will read, so that add-span can split them as the run will."""
    from tfx.components.example_gen.csv_example_gen import executor as csv_exec
    from tfx.utils import io_utils
    from tfx_bsl.coders import csv_decoder

    paths = sorted(fileio.glob(os.path.join(folder, files)))
    if not paths:
        return []
    # pylint: disable=protected-access  (TFX's own reader and converter, so the Examples hash as the run's do)
    parser, read = csv_decoder.ParseCSVLine(delimiter=","), csv_exec._ReadCsvRecordsFromTextFile()
    parser.setup()
    cells = [c for path in paths for line in read.process(path) for c, _ in parser.process(line)]
    inferrer = csv_decoder.ColumnTypeInferrer(io_utils.load_csv_column_names(paths[0]), skip_blank_lines=True)
    types = inferrer.create_accumulator()
    for c in cells:
        types = inferrer.add_input(types, c)
    to_example, infos = csv_exec._ParsedCsvToTfExample(), inferrer.extract_output(types)
    return [e for c in cells for e in to_example.process(c, infos)]


def planned_splits(data_dir: str, spans: dict[int, str], window: int, files: str, test_data_dir: str,
                   train_buckets: int, eval_buckets: int, min_eval_rows: int) -> dict[str, list[tuple[str, str]]]:
    """split -> (text, label) rows, as SpanCsvExecutor will split ``spans`` (number -> folder, e.g. with a
    staged span) and the test set: the same span choice, eval floor and TFX hash partition, applied here."""
    split_config = example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=TRAIN_SPLIT, hash_buckets=train_buckets),
        example_gen_pb2.SplitConfig.Split(name=EVAL_SPLIT, hash_buckets=eval_buckets)])
    buckets = [train_buckets, train_buckets + eval_buckets]
    chosen = choose({n: [folder] for n, folder in spans.items()}, window)[0]
    newest_rows = count_csv_rows(spans[chosen[-1]], files) if chosen else 0
    eval_from = eval_source(chosen, newest_rows, eval_buckets / buckets[-1], min_eval_rows)
    out = {TRAIN_SPLIT: [], EVAL_SPLIT: []}
    for n in chosen:
        for example in span_examples(spans[n], files):
            split = base_example_gen_executor._PartitionFn(  # pylint: disable=protected-access
                example, len(buckets), buckets, split_config) if n in eval_from else 0
            out[(TRAIN_SPLIT, EVAL_SPLIT)[split]].append(example_row(example.features.feature))
    if test_data_dir:
        out[TEST_SPLIT] = [example_row(e.features.feature) for e in span_examples(test_data_dir, files)]
    return out


def custom_config(window: int, files: str, test_data_dir: str, test_fingerprint: str,
                  min_eval_rows: int = 0) -> example_gen_pb2.CustomConfig:
    """The executor's settings, as the CustomConfig proto FileBasedExampleGen passes through."""
    struct = struct_pb2.Struct()
    struct.update({"window": window, "files": files, "test_data_dir": test_data_dir, "min_eval_rows": min_eval_rows,
                   # Locally TFX's driver fingerprints the training files for the cache key; this does the
                   # same for the test set, which lies outside input_base.
                   "test_fingerprint": test_fingerprint})
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def _settings(exec_properties) -> dict:
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY], config)
    struct = struct_pb2.Struct()
    config.custom_config.Unpack(struct)
    return json.loads(json.dumps(dict(struct)))


class SpanCsvExecutor(csv_executor.Executor):
    """TFX's CSV ExampleGen executor, reading the chosen spans and the test set into three splits."""

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        settings = _settings(exec_properties)
        data_dir = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        self.spans = choose_spans(data_dir, int(settings["window"]), settings["files"])
        self.skipped = choose(span_files(data_dir, settings["files"]))[1]
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        splits = output_config.split_config.splits
        buckets = [sum(s.hash_buckets for s in splits[:i + 1]) for i in range(len(splits))]
        exec_properties["_beam_pipeline_args"] = self._beam_pipeline_args or []
        read = self.GetInputSourceToExamplePTransform()  # TFX's CSV reader: one per span folder

        rows = {n: pipeline | f"ReadSpan{n}" >> read(exec_properties, f"span-{n}/{settings['files']}")
                for n in self.spans}
        # The newest span is hash-split like any ExampleGen output; older spans are all training data, unless
        # the newest span's eval share would fall under the floor: then every span is hash-split alike.
        eval_share, floor = splits[1].hash_buckets / buckets[-1], int(settings.get("min_eval_rows", 0))
        newest_rows = count_csv_rows(os.path.join(data_dir, f"span-{self.spans[-1]}"), settings["files"],
                                     enough=math.ceil(floor / eval_share))
        self.eval_from = eval_source(self.spans, newest_rows, eval_share, floor)
        split_all = len(self.eval_from) > 1
        parts = {n: rows[n] | f"SplitSpan{n}" >> beam.Partition(
            base_example_gen_executor._PartitionFn,  # pylint: disable=protected-access
            len(buckets), buckets, output_config.split_config) for n in self.eval_from}
        result = {s.name: ([parts[n][i] for n in self.eval_from] | f"Flatten{s.name}" >> beam.Flatten()
                           if split_all else parts[self.spans[-1]][i]) for i, s in enumerate(splits)}
        older = [rows[n] for n in self.spans if n not in parts]
        if older:
            result[splits[0].name] = [*older, result[splits[0].name]] | "TrainSpans" >> beam.Flatten()
        if settings["test_data_dir"]:
            test_properties = {**exec_properties, standard_component_specs.INPUT_BASE_KEY: settings["test_data_dir"]}
            result[TEST_SPLIT] = pipeline | "ReadTestSet" >> read(test_properties, settings["files"])
        # The base Do named only the configured splits; it writes a split only to a split the artifact has.
        self._examples.split_names = artifact_utils.encode_split_names(list(result))
        return result

    def Do(self, input_dict, output_dict, exec_properties):
        self._examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
        super().Do(input_dict, output_dict, exec_properties)
        examples = self._examples
        examples.span = self.spans[-1]
        examples.set_string_custom_property(SPANS, ",".join(map(str, self.spans)))
        examples.set_string_custom_property(SKIPPED_SPANS, ",".join(map(str, self.skipped)))
        examples.set_string_custom_property(EVAL_SPANS, ",".join(map(str, self.eval_from)))
        settings = _settings(exec_properties)
        examples.set_int_custom_property(MIN_EVAL_ROWS, int(settings.get("min_eval_rows", 0)))
        files = [example_gen_pb2.Input.Split(name=f"span-{n}", pattern=f"span-{n}/{settings['files']}")
                 for n in self.spans]
        fingerprint, _, _ = utils.calculate_splits_fingerprint_span_and_version(
            exec_properties[standard_component_specs.INPUT_BASE_KEY], files)
        if settings["test_data_dir"]:
            fingerprint += "\n" + utils.calculate_splits_fingerprint_span_and_version(
                settings["test_data_dir"], [example_gen_pb2.Input.Split(name=TEST_SPLIT, pattern=settings["files"])])[0]
        examples.set_string_custom_property(DATA_FINGERPRINT, hashlib.sha256(fingerprint.encode()).hexdigest()[:16])


def split_rows(examples, split: str) -> list[tuple[str, str]]:
    """(text, label) of every example in one split of an Examples artifact (undecodable bytes replaced)."""
    import tensorflow as tf

    files = fileio.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feats = tf.train.Example.FromString(record.numpy()).features.feature
        rows.append(example_row(feats))
    return rows


def example_row(feats) -> tuple[str, str]:
    """(text, label) of one tf.Example's features ("" for a missing value; undecodable bytes replaced)."""
    def value(name):
        kind = feats[name].WhichOneof("kind") if name in feats else None
        values = getattr(feats[name], kind).value if kind else []
        if not values:
            return ""
        return values[0].decode("utf-8", "replace") if isinstance(values[0], bytes) else str(values[0])

    return value(TEXT), value(LABEL)


def example_gen_executor() -> executor_spec.BeamExecutorSpec:
    return executor_spec.BeamExecutorSpec(SpanCsvExecutor)
