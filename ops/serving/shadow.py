"""`serve` in shadow mode (rollout.mode = canary): the canary scores stable's traffic off the request path.

The request thread answers from stable, then only hands the request (its instances' bytes and stable's outputs,
already computed) to ``Shadow.submit``: the request log's sampling coin, then ``put_nowait`` on a queue of at
most rollout.shadow_queue requests. One worker thread takes each, runs the canary's same signature on the same
instances, and writes one request-log row per instance holding both answers (ops/serving/request_log.py: the
`shadow` and `canary_*` columns). A full queue never waits: the request is logged with stable's answer only
(shadow = dropped) and counted. The canary is looked up when the worker scores, so a promote or a dropped
canary between the answer and the scoring logs the request unshadowed rather than against a version gone.

The worker shares the process's CPUs with the request threads: on a busy server the canary's scoring costs
answer latency through the CPU, never through a wait (docs/serving.md, "Shadow mode", has the measurement).
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np

from components.names import EXAMPLES_INPUT

_STOP = object()
SCORED, DROPPED, FAILED = "scored", "dropped", "failed"  # the request log's `shadow` column


class Shadow:
    """submit() on the request path (never blocks); close() scores what is queued, then stops the worker."""

    def __init__(self, request_log, canary, chunk: int, queue_requests: int, log=print, start: bool = True):
        self.request_log, self.canary, self.chunk, self.log = request_log, canary, chunk, log
        self.counts = {SCORED: 0, DROPPED: 0, FAILED: 0, "unshadowed": 0}  # instances
        self._queue: queue.Queue = queue.Queue(maxsize=max(queue_requests, 1))
        self._lock, self._failed_said = threading.Lock(), False
        self._thread = threading.Thread(target=self._run, name="serve-shadow", daemon=True)
        if start:
            self._thread.start()

    def submit(self, name: str, stable, signature: str, examples: bool, inputs: list, outputs: dict,
               seconds: float | None) -> None:
        """A request stable answered (``stable`` its Model): queued for the canary, or logged as dropped."""
        if not self.request_log.keep(len(inputs)):
            return  # sampled out of the log: no one would read its canary answer
        item = (time.time(), name, stable.version, signature, examples, inputs, outputs, seconds)
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._count(DROPPED, len(inputs))
            self._log(item, DROPPED)

    def pending(self) -> int:
        return self._queue.qsize()

    def stats(self) -> dict:
        with self._lock:
            return dict(self.counts)

    def close(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            self.counts[what] += n

    def _log(self, item, shadow: str, canary=None) -> None:
        when, name, version, signature, examples, inputs, outputs, seconds = item
        self.request_log.record(name, version, signature, examples, inputs, outputs, when=when, seconds=seconds,
                                shadow=shadow, canary=canary, sampled=True)

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            try:
                self._score(item)
            except Exception as e:  # noqa: BLE001  (the shadow must never take the server down)
                self._count(FAILED, len(item[5]))
                self._log(item, FAILED)
                if not self._failed_said:
                    self._failed_said = True
                    self.log(f"shadow: the canary failed to score a request ({type(e).__name__}: "
                             f"{(str(e).strip().splitlines() or [''])[0][:200]}); logged with stable's answer only")

    def _score(self, item) -> None:
        from ops.serving import loaded_model

        _, name, _, signature, examples, inputs, _, _ = item
        model = self.canary(name)
        if model is None:  # promoted or dropped since the answer
            self._count("unshadowed", len(inputs))
            return self._log(item, "")
        fn, wanted = model.signatures.get(signature), model.inputs.get(signature, {})
        if fn is None or len(wanted) != 1:
            raise ValueError(f"the canary (version {model.version}) has no one-input signature {signature}")
        (alias, _), = wanted.items()
        if (alias == EXAMPLES_INPUT) != examples:
            raise ValueError(f"the canary's {signature} takes {alias}, the request sent the other input")
        started = time.monotonic()
        outputs = loaded_model.run(fn, {alias: np.array(inputs, dtype=object)}, self.chunk)
        self._count(SCORED, len(inputs))
        self._log(item, SCORED, (model.version, outputs, time.monotonic() - started))
