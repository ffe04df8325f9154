"""A moved project: the paths MLMD recorded at the work dir's old location, found at its new one.

MLMD keeps every artifact's absolute URI (TFX writes <pipeline_root>/<component>/<output>/<execution id>), and
a pushed version's provenance names the Trainer's model by its absolute path, so after `mv project elsewhere`
they all point into a folder that is gone. The work dir keeps its own absolute path in ROOT_FILE (written by
each run, under the work lock, with the former ones). When the work dir is found elsewhere, the folder that
moved (the deepest one whose name changed: the project, with config, data and work dir inside) maps old -> new:
in memory for the commands that read (pipelines/mlmd_store.py connect), and once in MLMD itself, under the
lock, before a run (``adopt``), so that later readers and TFX's cache see the paths that exist.
"""
from __future__ import annotations

import dataclasses
import json
import os

ROOT_FILE = "root.json"  # in the work dir: {"root": its absolute path when a run last used it, "former": [...]}


@dataclasses.dataclass(frozen=True)
class Relocation:
    """(old folder, new folder) pairs: every former location of the moved folder, and where it is now."""
    moves: tuple[tuple[str, str], ...]

    def path(self, path: str) -> str:
        """``path`` at the new location when it lies under an old one; else unchanged."""
        for old, new in self.moves:
            if path == old or path.startswith(old + os.sep):
                return new + path[len(old):]
        return path

    def spellings(self, path: str) -> list[str]:
        """Every way MLMD may have recorded ``path`` (given in any location, old or new)."""
        here = self.path(path)
        out = [path, here]
        for old, new in self.moves:
            if here == new or here.startswith(new + os.sep):
                out.append(old + here[len(new):])
        return list(dict.fromkeys(out))

    def artifact(self, artifact):
        """``artifact`` (an MLMD proto, changed in place) with its URI and path-valued string properties moved."""
        artifact.uri = self.path(artifact.uri)
        for props in (artifact.properties, artifact.custom_properties):
            for value in props.values():
                if value.WhichOneof("value") == "string_value" and value.string_value.startswith(os.sep):
                    value.string_value = self.path(value.string_value)
        return artifact


def moved_folder(old: str, new: str) -> tuple[str, str]:
    """The folder that moved, given a path inside it before and after: the common trailing names dropped."""
    old_parts, new_parts = old.rstrip(os.sep).split(os.sep), new.rstrip(os.sep).split(os.sep)
    while len(old_parts) > 1 and len(new_parts) > 1 and old_parts[-1] == new_parts[-1]:
        old_parts.pop()
        new_parts.pop()
    return os.sep.join(old_parts) or os.sep, os.sep.join(new_parts) or os.sep


def _recorded(work_dir: str) -> dict:
    try:
        with open(os.path.join(work_dir, ROOT_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def find(work_dir: str, store=None) -> Relocation | None:
    """How the work dir moved since runs recorded their paths; None when it has not (or nothing was recorded).
    ``store``: MLMD, asked where the pipeline root was when the work dir predates ROOT_FILE."""
    here = os.path.abspath(work_dir)
    moves = tuple(dict.fromkeys(moved_folder(r, here) for r in reversed(_roots(here, store)) if r != here))
    return Relocation(moves) if moves else None


def _roots(here: str, store=None) -> list[str]:
    """Every location the work dir was recorded at, oldest first."""
    recorded = _recorded(here)
    return [*recorded.get("former", []), recorded["root"]] if recorded.get("root") else _from_mlmd(store)


def _from_mlmd(store) -> list[str]:
    """The work dir of a project run before ROOT_FILE existed: TFX's URI of the first Examples artifact is
    <pipeline root>/<component>/examples/<execution id>, and the default pipeline root is <work dir>/pipeline_root."""
    if store is None:
        return []
    try:
        examples = store.get_artifacts_by_type("Examples")
    except Exception:  # noqa: BLE001  (no such type yet: nothing was run)
        return []
    if not examples:
        return []
    pipeline_root = os.path.dirname(os.path.dirname(os.path.dirname(examples[0].uri)))
    gone = os.path.basename(pipeline_root) == "pipeline_root" and not os.path.exists(pipeline_root)
    return [os.path.dirname(pipeline_root)] if gone else []


def adopt(work_dir: str, store=None) -> int:
    """Under the work dir's lock, before a run: rewrites the moved paths in MLMD once (artifact URIs and
    path-valued properties) and records the work dir's location; returns how many artifacts changed.
    ``store``: MLMD as recorded, writable (pipelines/mlmd_store.py adopt_move); None before the first run."""
    here = os.path.abspath(work_dir)
    relocation = find(here, store) if store is not None else None
    changed = 0
    if relocation is not None:
        artifacts = store.get_artifacts()
        before = [a.SerializeToString() for a in artifacts]
        moved = [a for a, b in zip(map(relocation.artifact, artifacts), before) if a.SerializeToString() != b]
        if moved:
            store.put_artifacts(moved)
        changed = len(moved)
    former = [r for r in _roots(here, store) if r != here]
    os.makedirs(here, exist_ok=True)
    with open(os.path.join(here, ROOT_FILE + ".tmp"), "w") as f:
        json.dump({"root": here, "former": list(dict.fromkeys(former))}, f)
    os.replace(os.path.join(here, ROOT_FILE + ".tmp"), os.path.join(here, ROOT_FILE))
    return changed
