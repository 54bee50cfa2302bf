"""A SageMaker-style model server: ``GET /ping`` and ``POST /invocations`` on 127.0.0.1.

Run as a separate process per endpoint (or per transform job), like a serving container:

    python -m local_runtime.model_server --model-dir DIR --code-dir DIR --program inference.py

It prints ``listening on <port>`` once the model is loaded, so the parent knows it is ready.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def load_inference_module(code_dir: Path, program: str) -> Any:
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location("inference", code_dir / program)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_handler(module: Any, model: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, a kept-alive connection waits ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, *args: Any) -> None:  # requests are logged by the caller
            pass

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._reply(200, b"")
            else:
                self._reply(404, b"not found")

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._reply(404, b"not found")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            content_type = self.headers.get("Content-Type", "text/csv")
            accept = self.headers.get("Accept") or content_type
            try:
                data = module.input_fn(body, content_type)
                prediction = module.predict_fn(data, model)
                result = module.output_fn(prediction, accept)
            except Exception as error:
                # The framework container answers model errors with 500 and the message.
                traceback.print_exc()
                self._reply(500, str(error).encode())
                return
            payload, returned_type = result if isinstance(result, tuple) else (result, accept)
            self._reply(200, payload.encode() if isinstance(payload, str) else payload, returned_type)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--code-dir", type=Path, required=True)
    parser.add_argument("--program", default="inference.py")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    module = load_inference_module(args.code_dir, args.program)
    model = module.model_fn(str(args.model_dir))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(module, model))
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
