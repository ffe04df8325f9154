"""A small fake of the Kubeflow Pipelines v2beta1 REST API on 127.0.0.1, for the real kfp.Client.

It implements only what `transferline submit|schedule` call (healthz, experiments, pipelines and their
versions, uploads, runs, recurring runs), keeps state in memory, records every request, and shuts
itself down after `lifetime` seconds even if a test forgets to.
"""
from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import yaml

API = "/apis/v2beta1"


class FakeKfp:
    def __init__(self, lifetime: float = 120, token: str | None = None):
        self.requests: list[dict] = []
        self.experiments: dict[str, dict] = {}
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}  # id -> version, with "spec_bytes" (the uploaded file)
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self.token = token  # when set, requests without "Authorization: Bearer <token>" get 401
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime, self.close)
        self._timer.daemon = True

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, dict]:
        record = {"method": method, "path": path, "query": query,
                  "headers": {k.lower(): v for k, v in headers.items()}}
        self.requests.append(record)
        if self.token and headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"error": "unauthenticated", "code": 16, "message": "missing or bad bearer token"}
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {content_type}\r\n\r\n".encode() + body)
            files = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                     for part in message.iter_parts()}
            record["files"] = files
        elif body:
            record["json"] = json.loads(body)
        name = (query.get("filter") or [None])[0]
        wanted = None
        if name:
            predicate = json.loads(name)["predicates"][0]
            wanted = predicate.get("stringValue", predicate.get("string_value"))

        def matching(items):
            return [i for i in items if wanted is None or i["display_name"] == wanted]

        if method == "GET" and path == f"{API}/healthz":
            return 200, {"multi_user": False}
        if path == f"{API}/experiments":
            if method == "GET":
                return 200, {"experiments": matching(self.experiments.values())}
            experiment = {**record["json"], "experiment_id": self.new_id("experiment")}
            self.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if method == "GET" and path == f"{API}/pipelines":
            return 200, {"pipelines": matching(self.pipelines.values())}
        if method == "POST" and path == f"{API}/pipelines/upload":
            pipeline = {"pipeline_id": self.new_id("pipeline"), "display_name": query["name"][0],
                        "description": (query.get("description") or [""])[0]}
            self.pipelines[pipeline["pipeline_id"]] = pipeline
            self._add_version(pipeline["pipeline_id"], query["name"][0], record["files"]["uploadfile"])
            return 200, pipeline
        if method == "POST" and path == f"{API}/pipelines/upload_version":
            pipeline_id = query["pipelineid"][0]
            if pipeline_id not in self.pipelines:
                return 404, {"code": 5, "message": f"pipeline {pipeline_id} not found"}
            return 200, self._public(self._add_version(pipeline_id, query["name"][0],
                                                       record["files"]["uploadfile"]))
        m = re.fullmatch(f"{API}/pipelines/([^/]+)/versions", path)
        if method == "GET" and m:
            versions = matching(self._public(v) for v in self.versions.values() if v["pipeline_id"] == m.group(1))
            if (query.get("sort_by") or [""])[0] == "created_at desc":
                versions.reverse()
            size = int((query.get("page_size") or [0])[0])
            return 200, {"pipeline_versions": versions[:size] if size else versions}
        if method == "POST" and path == f"{API}/runs":
            run = {**record["json"], "run_id": self.new_id("run")}
            self.runs[run["run_id"]] = run
            return 200, run
        if path == f"{API}/recurringruns":
            if method == "GET":
                experiment = (query.get("experiment_id") or [None])[0]
                # camelCase: what the real API returns here (and all kfp_server_api reads)
                return 200, {"recurringRuns": matching(
                    r for r in self.recurring_runs.values() if experiment in (None, r["experiment_id"]))}
            job = {**record["json"], "recurring_run_id": self.new_id("recurring")}
            self.recurring_runs[job["recurring_run_id"]] = job
            return 200, job
        m = re.fullmatch(f"{API}/recurringruns/([^/:]+)", path)
        if method == "DELETE" and m and m.group(1) in self.recurring_runs:
            del self.recurring_runs[m.group(1)]
            return 200, {}
        return 404, {"code": 5, "message": f"fake KFP: no route for {method} {path}"}

    def _add_version(self, pipeline_id: str, name: str, spec_bytes: bytes) -> dict:
        version = {"pipeline_version_id": self.new_id("version"), "pipeline_id": pipeline_id,
                   "display_name": name, "spec_bytes": spec_bytes}
        self.versions[version["pipeline_version_id"]] = version
        return version

    @staticmethod
    def _public(version: dict) -> dict:
        """The version as the API returns it: the spec parsed (KFP stores and returns it as a Struct)."""
        return {**{k: v for k, v in version.items() if k != "spec_bytes"},
                "pipeline_spec": yaml.safe_load(version["spec_bytes"])}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake._lock:
                    status, payload = fake.handle(self.command, url.path, parse_qs(url.query), self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args):  # keep pytest output clean
                pass

        return Handler
