"""A scripted OpenAI-compatible chat server on 127.0.0.1 for tests that drive the real litellm client.

Each POST pops the next `(kind, payload)` of the script:
  ("text", str)                          a normal reply with that content
  ("tool_calls", [(name, args), ...])    a reply calling tools (args: a dict, or a raw str sent as is)
  ("status", int)                        an error status (e.g. 429) with an OpenAI-style error body
  ("slow", seconds)                      sleeps, then replies "{}" (for client timeouts)
  ("call", fn)                           calls fn() (e.g. to request a stop), then pops the next entry
An exhausted script answers "{}".  Request bodies are kept in `ScriptedHandler.bodies`.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator


class ScriptedHandler(BaseHTTPRequestHandler):
    script: list = []
    bodies: list = []
    calls = 0  # tool-call ids are unique over the whole server's life

    def log_message(self, *a: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ScriptedHandler.bodies.append(body.decode())
        kind, payload = self._next()
        while kind == "call":
            payload()
            kind, payload = self._next()
        if kind == "status":
            self._send(payload, {"error": {"message": "rate limited", "type": "rate_limit"}})
            return
        if kind == "slow":
            time.sleep(payload)
            kind, payload = "text", "{}"
        message: dict[str, Any] = {"role": "assistant", "content": payload if kind == "text" else None}
        finish = "stop"
        if kind == "tool_calls":
            message["tool_calls"] = []
            for name, args in payload:
                ScriptedHandler.calls += 1
                message["tool_calls"].append({
                    "id": f"call_{ScriptedHandler.calls}", "type": "function",
                    "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}})
            finish = "tool_calls"
        self._send(200, {"id": "x", "object": "chat.completion", "created": int(time.time()),
                         "model": "test-model",
                         "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                         "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})

    @staticmethod
    def _next() -> tuple[str, Any]:
        return ScriptedHandler.script.pop(0) if ScriptedHandler.script else ("text", "{}")


@contextmanager
def scripted_server(script: list) -> Iterator[ThreadingHTTPServer]:
    """Serve `script` on a free loopback port; the base URL is f"http://127.0.0.1:{port}/v1"."""
    ScriptedHandler.script = list(script)
    ScriptedHandler.bodies = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
