"""An OpenAI-compatible chat endpoint in a thread, answering by what the prompt asks for."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class FakeJudge:
    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if body.get("model") == "broken":
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"no such model")
                    return
                text = body["messages"][-1]["content"]
                if text.startswith("Act as the API server"):
                    reply = 'Status Code: 200\nResponse: {"rain": true}'
                elif text.startswith("Judge the solution"):
                    reply = "## Results\nProcess Correctness: Yes\nFinal Response Correctness: No"
                else:
                    reply = "Fine. Rating: [[7]]" if "math" not in str(body) else "Rating: [[3]]"
                data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
