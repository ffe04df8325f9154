"""Zero-byte "directory marker" objects: what TF's GCS filesystem leaves and KFP's launcher cannot download.

TF <= 2.16's GCS filesystem writes an empty object named `<dir>/` for every directory it creates
(`tf.io.gfile.makedirs`, `RecursivelyCreateDir`). The open-source KFP launcher downloads every object under
each input artifact's prefix into `/gcs/<bucket>/<key>` before the task's code runs
(kubeflow/pipelines backend/src/v2/objectstore/object_store.go:176-268, DownloadBlob/downloadFile,
at 7b70c7b95f = 2.17.0 and every 2.x before it): a marker `…/model/` becomes an empty *file*
`…/model`, and the next object under it fails with `mkdir …/model: not a directory`
(kubeflow/pipelines#13476). So after a task, the markers under its outputs are removed.

Only a marker with something below it is removed: the directory still exists through its children. An
empty directory's marker is all that makes it exist, so it is kept (downloading it as an empty file breaks
nothing, since nothing follows it). That keeps every layout, `Format-Serving/` included, as TF wrote it.

A store is chosen by URI prefix from STORES (gs:// → Google Cloud Storage). Tests register a local
stand-in bucket there; nothing else does.
"""
from __future__ import annotations

from typing import Callable, Iterable, Protocol


class ObjectStore(Protocol):
    def list(self, uri: str) -> list[tuple[str, int]]:
        """(object URI, size) of `uri` itself and every object below `uri/`, in the store's listing order."""

    def delete(self, object_uri: str) -> None: ...


def markers_to_remove(objects: Iterable[tuple[str, int]]) -> list[str]:
    """Zero-byte `…/` objects that have at least one other object below them."""
    keys = sorted(key for key, _ in objects)
    markers = [key for key, size in objects if size == 0 and key.endswith("/")]
    return sorted(m for m in markers if any(k != m and k.startswith(m) for k in keys))


def remove_directory_markers(uri: str, store: ObjectStore) -> list[str]:
    """Deletes the removable markers under `uri` (see the module docstring); returns what was deleted."""
    removed = markers_to_remove(store.list(uri))
    for key in removed:
        store.delete(key)
    return removed


class GcsStore:
    """google-cloud-storage (installed with apache-beam[gcp], in the lock and in the TFX image)."""

    def __init__(self):
        from google.cloud import storage

        self._client = storage.Client()

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri[len("gs://"):].partition("/")
        return bucket, key

    def list(self, uri: str) -> list[tuple[str, int]]:
        bucket, prefix = self._split(uri.rstrip("/"))
        blobs = self._client.list_blobs(bucket, prefix=prefix)  # lexicographic, like the launcher's listing
        return [(f"gs://{bucket}/{b.name}", b.size or 0) for b in blobs
                if b.name == prefix or b.name.startswith(prefix + "/")]

    def delete(self, object_uri: str) -> None:
        bucket, key = self._split(object_uri)
        self._client.bucket(bucket).blob(key).delete()


STORES: dict[str, Callable[[], ObjectStore]] = {"gs://": GcsStore}


def store_for(uri: str) -> ObjectStore | None:
    for prefix, make in STORES.items():
        if uri.startswith(prefix):
            return make()
    return None
