"""`serve`'s HTTP side: TF Serving 2.16.1's routing, methods, bodies and answers (http.server, threads).

Sources (tensorflow/serving 2.16.1): HS = model_servers/http_server.cc, HRA = http_rest_api_handler.cc,
HRU = http_rest_api_util.cc, EVR/EVS = util/net_http/server/internal/evhttp_{request,server}.cc; libevent 2.1.8.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

from ops.serving import loaded_model as serve_model
from ops.serving.metrics import PATH as METRICS_PATH
from ops.serving.rest.body import ApiError, bad, gunzip, is_gzip
from ops.serving.rest.writer import error_body

V1 = re.compile(r"(?i)/v1/.*")  # HttpRestApiHandler::kPathRegex: anything else is libevent's HTML 404 (HS:140-149)
# HRU:31-34. RE2's \d is ASCII; the path matched includes the query string (EVR:106-117,136-138).
_POST = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|"
                   r"predict)")
_GET = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?")
_DRAIN_LIMIT = 16 << 20  # an oversized body up to this is read and dropped: the client gets the answer, not a reset
_PHRASES = {400: "Bad Request", 404: "Not Found", 417: "Expectation Failed", 501: "Not Implemented"}
_ERRORS = itertools.count(1)  # numbers internal errors: the answer names the number, the log has the detail


class Route(NamedTuple):
    action: str  # predict | classify | regress | metadata | status
    name: str
    version: int | None
    label: str | None


def _decode(text: str) -> str:  # curl_easy_unescape (HRU:69-88): %XX only, '+' stays
    return urllib.parse.unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def route(method: str, path: str) -> Route:
    """A request under /v1/ -> what TF Serving does with it (ParseModelInfo, HRU:90-130; dispatch, HRA:74-107)."""
    pattern = {"POST": _POST, "GET": _GET}.get(method)
    match = pattern.fullmatch(path) if pattern else None
    name, version, label, verb = match.groups() if match else ("", "", "", "")
    if version:
        if int(version) >= 1 << 63:  # absl::SimpleAtoi into int64; returned before the JSON body is made
            raise ApiError(400, f"Failed to convert version: {version} to numeric.", body=False)
    if not match:
        raise bad(f"Malformed request: {method} {path}")
    name, label = _decode(name or ""), (_decode(label) if label else None)
    version = int(version) if version else None
    if method == "POST":
        return Route(verb, name, version, label)  # ':PREDICT' matches, then no dispatch branch takes it (HRA:85-96)
    if (verb or "") == "metadata":  # case-sensitive, though the pattern is not (HRA:97)
        if not name:
            raise bad("Missing model name in request.")
        return Route("metadata", name, version, label)
    if not name:  # HRA:187-189
        raise bad("Missing model name in request.")
    return Route("status", name, version, label)


def html_page(status: int) -> bytes:
    """libevent's evhttp_send_error page (http.c ERR_FORMAT)."""
    phrase = _PHRASES.get(status, "Error")
    return (f"<HTML><HEAD>\n<TITLE>{status} {phrase}</TITLE>\n</HEAD><BODY>\n<H1>{phrase}</H1>\n"
            f"</BODY></HTML>\n").encode()


def metadata_body(route: Route, model) -> bytes:
    """HRU:145-198: model_spec and the SignatureDefMap, concatenated as TF Serving does."""
    spec = {"name": route.name, "signature_name": "", "version": str(model.version)}
    return ("{\n\"model_spec\":" + json.dumps(spec, indent=1, ensure_ascii=False) + ",\n\"metadata\": {"
            "\"signature_def\": " + json.dumps({"signature_def": model.signature_defs}, indent=1, ensure_ascii=False)
            + "}\n}\n").encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's next request skips the TCP handshake
    disable_nagle_algorithm = True  # the body, written after the headers, is not held back by Nagle + delayed ACK
    server_version = "transferline-serve"
    timeout = 60  # a stalled client does not hold its thread forever

    def do_GET(self):
        app, started, v1 = self.server.app, time.monotonic(), bool(V1.fullmatch(self.path))
        r = code = None
        served = []  # the Model that answered, if one did (for the per-version metric)

        def lookup():
            served.append(app.lookup(r.name, r.version, r.label))
            return served[-1]

        try:
            body = self._body()  # read first (libevent reads it whole before dispatch): the client gets the answer
            if app.metrics is not None and self.path == METRICS_PATH:  # http_server.cc:89-117, not under /v1/
                return self._send(200, app.metrics.page(), "text/plain")
            if not v1:
                return self._html(404)
            code = "OK"
            if self.command == "OPTIONS":  # CORS preflight (HS:170-177): 200 with an http(s) Origin, else 400
                origin = re.search(r"https?://", self.headers.get("Origin", ""))
                code = "OK" if origin else "FAILED_PRECONDITION"
                return self._send(200 if origin else 400, b"", "text/html; charset=ISO-8859-1")
            r = route(self.command, self.path)
            if r.action == "predict":
                self._send(200, serve_model.predict(body, lookup, app.config, app.record, app.metrics))
            elif r.action in ("classify", "regress"):
                self._send(200, serve_model.classify_or_regress(r.action, body, lookup))
            elif r.action == "metadata":
                self._send(200, metadata_body(r, lookup()))
            elif r.action == "status":
                self._send(200, app.status(r.name, r.version))
            else:  # a verb in another case (:PREDICT) matches the pattern but no dispatch branch (HRA:85-96)
                raise bad(f"Malformed request: {self.command} {self.path}")
        except ApiError as e:
            code = e.code
            self._send(e.status, error_body(str(e)) if e.body else b"")
        except _HtmlError as e:
            code = None  # libevent's own refusal: never reaches TF Serving's handler, nor its counts
            self._html(e.status)
        except (ConnectionError, TimeoutError):
            code = "CANCELLED"
            self.close_connection = True
        except Exception as e:  # a bug or a TF failure: answered, never fatal; Python's text only in the log
            code, number = "INTERNAL", next(_ERRORS)
            where = traceback.extract_tb(e.__traceback__)[-1]
            app.log(f"internal error {number} on {self.command} {self.path}: {type(e).__name__}: {e} "
                    f"(at {os.path.basename(where.filename)}:{where.lineno})")
            self._send(500, error_body(f"Internal error {number} while processing the request; the server's log "
                                       "has the details"))
        finally:
            if app.metrics is not None and v1 and code is not None:  # as TF Serving counts (HS:194-201)
                api = r.action if r is not None and self.command == "POST" else ""
                app.metrics.request(r.name if r is not None else "", api, code, time.monotonic() - started,
                                    served[-1].version if served else None, r.action if r is not None else None)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def do_TRACE(self):  # decoded by EVR but not in EVS's allowed methods (EVS:114-117): libevent's 501
        self._html(501)

    do_CONNECT = do_TRACE

    def _body(self) -> bytes:
        serve = self.server.app.config.serve
        cap, length = serve.max_body_bytes, self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if not chunked and length is not None and not length.strip().isdigit():
            raise _HtmlError(400)
        self._check_expect(chunked, int(length) if length and length.strip().isdigit() else 0)
        if chunked:
            data = self._chunked(cap)
        elif length is None:  # libevent 2.1.8: no length and not chunked = no body
            # a POST/PUT/PATCH may have sent one anyway: it is not read as the next request
            self.close_connection = self.close_connection or self.command in ("POST", "PUT", "PATCH")
            data = b""
        elif int(length) > cap:  # a deviation (serve.max_body_bytes): TF Serving reads any size
            self._drain(int(length))
            raise _too_big(cap)
        else:
            data = self.rfile.read(int(length))
        if is_gzip(self.headers.get("Content-Encoding", "")):  # deflate and others: parsed as they are
            if not serve.gzip:  # a deviation: TF Serving decompresses
                raise bad("Content-Encoding gzip is off in this development stand-in (serve.gzip = false; "
                          "TF Serving decompresses it)")
            data = gunzip(data, cap)  # not valid gzip: b"", an empty document, as TF Serving
            if data is None:
                raise _too_big(cap)
        return data

    def _check_expect(self, chunked: bool, length: int):
        """libevent 2.1.8 evhttp_get_body (http.c:2152-2225, evhttp_have_expect 574-587): an HTTP/1.1 POST, PUT
        or PATCH with a body and an Expect other than 100-continue is refused with 417 before its body is read
        (http.server has already answered 100-continue)."""
        expect = self.headers.get("Expect")
        if (expect is None or expect.strip().lower() == "100-continue" or not (chunked or length > 0)
                or self.command not in ("POST", "PUT", "PATCH") or self.request_version < "HTTP/1.1"):
            return
        if not chunked:
            self._drain(length)  # read and dropped: the client reads the answer rather than a reset
        raise _HtmlError(417)

    def _drain(self, length: int):
        """Reads and drops a body of up to _DRAIN_LIMIT bytes; a longer one closes the connection instead."""
        self.close_connection = self.close_connection or length > _DRAIN_LIMIT
        while 0 < length <= _DRAIN_LIMIT and (chunk := self.rfile.read(min(length, 1 << 16))):
            length -= len(chunk)

    def _chunked(self, cap: int) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise _HtmlError(400) from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return bytes(data)
            if len(data) + size > cap:
                self.close_connection = True
                raise _too_big(cap)
            data += self.rfile.read(size)
            self.rfile.readline(1024)

    def _send(self, status: int, data: bytes, content_type: str = "application/json"):
        if self.server.saturated:  # connections wait for a thread: this one is not kept alive for another request
            self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer carries no body (libevent's evhttp_response_needs_body)
            self.wfile.write(data)

    def _html(self, status: int):
        self.close_connection = True  # evhttp_send_page_ adds Connection: close
        self._send(status, html_page(status), "text/html")

    def send_error(self, code, message=None, explain=None):  # http.server's own errors: libevent's HTML page
        self.close_connection = True
        try:
            self._html(code if code in _PHRASES else 400)
        except OSError:
            pass

    def log_message(self, format, *args):  # quiet unless request logging is on
        if self.server.app.log_requests:
            self.server.app.log(f"{self.address_string()} {format % args}")


class _HtmlError(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


def _too_big(cap: int) -> ApiError:
    return bad(f"Request body exceeds the limit of {cap} bytes (serve.max_body_bytes, a protection of the "
               "development stand-in; TF Serving has no such limit)")


class Server(ThreadingHTTPServer):
    """One thread per connection, at most ``max_threads``; beyond that, connections wait in a listen backlog of
    ``backlog`` (socketserver's default of 5 reset a burst of 20 simultaneous connections)."""
    daemon_threads = True

    def __init__(self, address, handler, backlog: int = 1024, max_threads: int = 64):
        self.request_queue_size = backlog  # listen(2)'s backlog, read by server_activate
        self._slots, self.saturated, self._stopping = threading.BoundedSemaphore(max_threads), False, False
        super().__init__(address, handler, bind_and_activate=False)

    def process_request(self, request, client_address):
        """The accept loop waits for a free thread; the connections behind it wait in the backlog."""
        if not self._slots.acquire(blocking=False):
            self.saturated = True
            while not self._slots.acquire(timeout=0.5):
                if self._stopping:
                    return self.shutdown_request(request)
            self.saturated = False
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self):
        self._stopping = True
        super().shutdown()

    def handle_error(self, request, client_address):  # instead of the default traceback
        error = sys.exc_info()[1]
        if not isinstance(error, (ConnectionError, TimeoutError)):
            self.app.log(f"connection from {client_address[0]} failed: {type(error).__name__}: {error}")
