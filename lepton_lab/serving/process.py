"""The model server process of one deployment: ``python -m lepton_lab.serving.process SPEC``.

It runs MLServer with :class:`~lepton_lab.serving.runtime.LeptonRuntime` on the ports the
spec names. The supervisor (:mod:`lepton_lab.serving.supervisor`) starts it, reads its log and
restarts it when it crashes.

Two things MLServer 1.7 does not offer are added to its REST app here, before it starts (the
only place that reaches into MLServer's server objects):

- a limit on the request body (uvicorn has none): a larger body gets a 413 in the protocol's
  error shape before it is read into memory;
- Prometheus' ``/metrics`` on the inference port itself. MLServer serves metrics on a second
  port, which the Jupyter server's proxy and the deployment's one URL would not reach; that
  port stays, bound like the others.

Every error that the REST app answers (malformed JSON included, which FastAPI words as a 422
``detail`` list) leaves in the protocol's shape, ``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

#: Exit status of a model that cannot load: restarting it would fail the same way.
EXIT_LOAD_FAILED = 3
#: Where the process writes why its model could not be loaded (in the deployment's folder).
FAILURE_FILE = "load-failure.txt"


class BodyLimit:
    """ASGI middleware: refuse a request body over ``limit`` bytes with a 413, by its
    ``Content-Length`` or, for a chunked body, as soon as the bytes read pass the limit."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _drain(receive)
                await _error(send, 413, self._message(int(value)))
                return
        seen, over, answered = 0, False, False

        async def limited() -> dict:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not over:
                    over = True
                    if message.get("more_body"):
                        await _drain(receive)
                    raise _TooLarge(seen)
            return message

        async def answer(message: dict) -> None:
            # FastAPI turns an error raised while it reads the body into its own 400; once the
            # body is over the limit, whatever the app answers is replaced by the 413
            nonlocal answered
            if not over:
                await send(message)
            elif message["type"] == "http.response.start" and not answered:
                answered = True
                await _error(send, 413, self._message(seen, "at least "))

        try:
            await self.app(scope, limited, answer)
        except _TooLarge:
            if not answered:
                answered = True
                await _error(send, 413, self._message(seen, "at least "))

    def _message(self, size: int, prefix: str = "") -> str:
        return (
            f"the request body ({prefix}{size} bytes) is over this deployment's limit of "
            f"{self.limit} bytes"
        )


class _TooLarge(Exception):
    pass


async def _drain(receive: Any) -> None:
    """Read the rest of the body and drop it: answering before the client has sent it would
    reset the connection under the client, which then never sees the 413."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class ProtocolErrors:
    """ASGI middleware: a 4xx answer that is not already ``{"error": ...}`` is rewritten
    into that shape (FastAPI's validation errors, Starlette's 404/405 for unknown paths)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict | None = None
        body = bytearray()

        async def capture(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                start = message
                return
            if start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                # FastAPI's 422 for a body that does not parse is a plain bad request here
                status = 400 if start["status"] == 422 else start["status"]
                await _error(send, status, _protocol_message(bytes(body)), start)

        await self.app(scope, receive, capture)


def _protocol_message(body: bytes) -> str:
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip() or "bad request"
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        # an error raised in a parallel inference worker comes back named by its class
        return re.sub(r"^mlserver\.errors\.\w+: ", "", parsed["error"])
    if isinstance(parsed, dict) and "detail" in parsed:
        detail = parsed["detail"]
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
            if first.get("type") == "json_invalid":
                return f"the request body is not valid JSON: {first.get('msg', '')}".strip()
            return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg"))
        return str(detail)
    return json.dumps(parsed)


async def _error(send: Any, status: int, message: str, start: dict | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (k, v)
        for k, v in (start or {}).get("headers", [])
        if k.lower() not in (b"content-length", b"content-type", b"content-encoding")
    ]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _settings(spec: dict[str, Any]) -> tuple[Any, Any]:
    from mlserver.settings import ModelParameters, ModelSettings, Settings

    settings = Settings(
        debug=False,
        host=spec["host"],
        http_port=spec["http_port"],
        grpc_port=spec["grpc_port"],
        metrics_port=spec["metrics_port"],
        metrics_dir=str(Path(spec["dir"]) / "metrics"),
        parallel_workers=spec["workers"],
        load_models_at_startup=False,
        model_repository_root=spec["dir"],
        server_name="lepton-lab",
    )
    model = ModelSettings(
        name=spec["name"],
        implementation="lepton_lab.serving.runtime.LeptonRuntime",
        parameters=ModelParameters(
            uri=spec["uri"],
            version=str(spec["version"]),
            extra={
                "format": spec["format"],
                "framework": spec["framework"],
                "max_batch_size": spec["max_batch_size"],
                "max_batch_delay_ms": spec["max_batch_delay_ms"],
            },
        ),
    )
    return settings, model


def _metrics_route(settings: Any) -> Any:
    from mlserver.metrics.prometheus import PrometheusEndpoint

    return PrometheusEndpoint(settings).handle_metrics


async def serve(spec: dict[str, Any]) -> int:
    """Run the model server until a signal stops it; the exit status says how it ended."""
    from mlserver import MLServer

    settings, model = _settings(spec)
    server = MLServer(settings)
    app = server._rest_server._app
    app.add_route("/metrics", _metrics_route(settings), methods=["GET"])
    app.add_middleware(ProtocolErrors)
    app.add_middleware(BodyLimit, limit=spec["max_request_bytes"])
    servers = asyncio.ensure_future(
        asyncio.gather(
            server._rest_server.start(),
            server._grpc_server.start(),
            *([server._metrics_server.start()] if server._metrics_server else []),
        )
    )
    try:
        await server._model_registry.load(model)
    except Exception as exc:
        # the reason, for the deployment's error; the log gets it too, then the shutdown's noise
        reason = f"{type(exc).__name__}: {exc}".strip()
        (Path(spec["dir"]) / FAILURE_FILE).write_text(reason)
        print(f"lepton-lab: the model could not be loaded: {reason}", file=sys.stderr, flush=True)
        await server.stop()
        try:
            await asyncio.wait_for(servers, 10)
        except BaseException:  # noqa: BLE001 - already failing; the exit status says it
            pass
        return EXIT_LOAD_FAILED
    print(
        f"lepton-lab: serving {spec['name']} v{spec['version']} ({spec['format']}) on "
        f"http://{spec['host']}:{spec['http_port']}",
        file=sys.stderr,
        flush=True,
    )
    await servers
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lepton_lab.serving.process")
    parser.add_argument("spec", help="the deployment's spec.json")
    parser.add_argument("--parent", type=int, default=None, help="die with this process")
    args = parser.parse_args(argv)
    # everything this process and MLServer write (its metrics folder for parallel workers, a
    # load failure's reason) is the lab user's alone, like the rest of the state directory
    os.umask(0o077)
    if args.parent is not None:
        # set here, not in a preexec_fn: the supervisor is a threaded process (a Jupyter server)
        from lepton_lab.config.processes import die_with_parent

        die_with_parent(args.parent)
    spec = json.loads(Path(args.spec).read_text())
    os.chdir(spec["dir"])  # MLServer keeps its .metrics/.envs folders in the working folder
    return asyncio.run(serve(spec))


if __name__ == "__main__":
    sys.exit(main())
