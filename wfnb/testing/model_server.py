"""A local fake model server that the real OpenAI and Anthropic clients talk to, offline.

It serves OpenAI Chat Completions (``POST /v1/chat/completions``), OpenAI Responses
(``POST /v1/responses``) and Anthropic Messages (``POST /v1/messages``) on 127.0.0.1, streamed
(Server-Sent Events, chunked HTTP/1.1 with keep-alive) or not, and lists its models
(``GET /v1/models``), in the wire formats the real APIs use, so ``openai``, ``anthropic`` and
the frameworks built on them do real HTTP and real SSE parsing. What it answers is
deterministic (see :func:`wfnb.testing.scenario_reply`) and scriptable per model name with
:meth:`ModelServer.script`::

    from openai import OpenAI
    from wfnb.testing import ModelServer

    with ModelServer() as server:
        client = OpenAI(base_url=server.openai_base_url, api_key=server.api_key)
        for chunk in client.chat.completions.create(
                model="fake-reasoning", messages=[{"role": "user", "content": "Hi?"}],
                stream=True):
            ...

Errors carry ``x-should-retry: false``, so a client reports them at once instead of retrying.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from wfnb.testing import _anthropic, _openai_chat, _openai_responses
from wfnb.testing._script import (
    SCENARIO_MODELS,
    Failure,
    Prompt,
    Reply,
    Responder,
    scenario_reply,
)
from wfnb.testing._wire import Api, Body, ident

logger = logging.getLogger("wfnb.testing")

APIS: dict[str, Api] = {
    "/v1/chat/completions": _openai_chat.API,
    "/v1/responses": _openai_responses.API,
    "/v1/messages": _anthropic.API,
}


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server answered: its path and JSON body, for tests to check."""

    path: str
    body: Body


class ModelServer:
    """OpenAI- and Anthropic-compatible fake models on ``127.0.0.1:port`` (a free port by
    default); ``delay`` seconds pass between streamed events, so live displays can be seen.

    The request's ``model`` picks the answer (details in :func:`scenario_reply`):
    ``fake-reasoning`` thinks first; ``fake-tool`` calls the first tool offered, and answers with
    its result once that is sent back; ``fake-reasoning-tool`` does both; ``fake-error-<status>``
    fails with that HTTP status; ``fake-error-midstream`` fails half-way through the stream;
    ``fake-slow`` pauses 0.1 s between events; ``fake-long-<shape>[-<n>k]`` writes n KB of
    Markdown paragraphs, code, list, table or line; any other name gets a short answer quoting
    the question. :meth:`script` sets your own answers.
    """

    api_key = "wfnb-local"  # any key works; the clients insist on having one

    def __init__(self, port: int = 0, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests: list[RecordedRequest] = []
        self._port = port
        self._scripts: dict[str, Responder] = {}
        self._lock = threading.Lock()
        self._count = 0
        self._connections: set[socket.socket] = set()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, while the server runs."""
        if self._http is None:
            raise RuntimeError("the model server is not running: call start() or use `with`")
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the ``base_url`` for OpenAI clients."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for Anthropic clients (they add ``/v1`` themselves)."""
        return self.url

    def script(self, model: str, reply: Reply | str | Responder) -> None:
        """Answer requests for ``model`` with ``reply``: a fixed :class:`Reply`, a text, or a
        function of the :class:`Prompt`. Scripts take precedence over the built-in scenarios."""
        if isinstance(reply, str):
            reply = Reply(text=reply)
        responder = reply if callable(reply) else _constant(reply)
        with self._lock:
            self._scripts[model] = responder

    def scripted_models(self) -> list[str]:
        """The model names :meth:`script` has set, sorted."""
        with self._lock:
            return sorted(self._scripts)

    def reply_for(self, prompt: Prompt) -> Reply:
        """What this server answers ``prompt``: its model's script, else the scenario."""
        with self._lock:
            responder = self._scripts.get(prompt.model, scenario_reply)
        return responder(prompt)

    def start(self) -> ModelServer:
        """Serve from a daemon thread (again, after stop(): on a new free port unless given)."""
        if self._http is not None:
            return self
        self._http = _HTTPServer(("127.0.0.1", self._port), _Handler, self)
        self._thread = threading.Thread(target=self._http.serve_forever,
                                        name="wfnb-model-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections (clients see them closed)."""
        if self._http is None:
            return
        self._http.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self._http.server_close()
        if self._thread is not None:
            self._thread.join()
        self._http = self._thread = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._http is not None else "stopped"
        return f"<ModelServer {where}>"

    def _begin(self, path: str, body: Body) -> int:
        """Record a request; its number (from 1) makes its ids."""
        with self._lock:
            self.requests.append(RecordedRequest(path, body))
            self._count += 1
            return self._count

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def _constant(reply: Reply) -> Responder:
    return lambda prompt: reply


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 models: ModelServer) -> None:
        super().__init__(address, handler)
        self.models = models

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a dropped client, a stopped server) is no error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection: dispatches each request to its API, then writes the answer."""

    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.models._track(self.connection, True)

    def finish(self) -> None:
        self.server.models._track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test or notebook should not print a line per request."""

    def do_GET(self) -> None:
        """``GET /v1/models``: the scenarios and scripted models; ``GET /v1/models/{name}``:
        any name (every name answers). In the format of the asking client's API."""
        path = self.path.split("?", 1)[0]
        wire = _anthropic if self._from_anthropic() else _openai_chat
        header = wire.API.request_id_header
        if path == "/v1/models":
            names = [*SCENARIO_MODELS, *self.server.models.scripted_models()]
            self._json(200, wire.model_list(names), header, 0)
        elif path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
            self._json(200, wire.model_info(urllib.parse.unquote(path[len("/v1/models/"):])),
                       header, 0)
        else:
            self._not_found("GET", path)

    def do_POST(self) -> None:
        models = self.server.models
        path = self.path.split("?", 1)[0]
        api = APIS.get(path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if api is None:
            self._not_found("POST", path)
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the request body is not a JSON object")
        except ValueError as error:
            number = models._begin(path, {})
            self._json(400, api.error(Failure(f"invalid JSON body: {error}", 400), number),
                       api.request_id_header, number)
            return
        number = models._begin(path, body)
        try:
            prompt = api.parse(body)
            reply = models.reply_for(prompt)
        except Exception as error:  # a script's bug, or a body no real API would accept
            where = f"request {number} to {path} (model {body.get('model')!r})"
            logger.exception("the model server failed on %s", where)  # the traceback, for you
            broken = Failure(f"the model server failed on {where}: {error!r}")
            self._json(500, api.error(broken, number), api.request_id_header, number)
            return
        failure = reply.failure
        streamed = bool(body.get("stream"))
        if failure is not None and not (failure.midstream and streamed):
            self._json(failure.status, api.error(failure, number), api.request_id_header,
                       number)
        elif streamed:
            self._stream(api, body, prompt, reply, number)
        else:
            self._json(200, api.complete(body, prompt, reply, number), api.request_id_header,
                       number)

    def _from_anthropic(self) -> bool:
        return "anthropic-version" in self.headers  # every Anthropic client sends it

    def _not_found(self, method: str, path: str) -> None:
        api = (_anthropic if self._from_anthropic() else _openai_chat).API
        failure = Failure(f"no such endpoint: {method} {path}", 404)
        self._json(404, api.error(failure, 0), api.request_id_header, 0)

    def _json(self, status: int, data: Body, request_id_header: str, number: int) -> None:
        payload = json.dumps(data, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(request_id_header, ident("req_", number))
        if status >= 400:
            self.send_header("x-should-retry", "false")
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, api: Api, body: Body, prompt: Prompt, reply: Reply, number: int) -> None:
        """The answer as chunked Server-Sent Events; the connection stays open for the next."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header(api.request_id_header, ident("req_", number))
        self.end_headers()
        delay = self.server.models.delay if reply.delay is None else reply.delay
        try:
            for i, data in enumerate(api.stream(body, prompt, reply, number)):
                if delay and i:
                    time.sleep(delay)
                self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading: nothing left to send

