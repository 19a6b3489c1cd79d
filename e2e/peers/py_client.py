#!/usr/bin/env python3
"""MCP client driver built on the Python SDK (`mcp`), for the proxy e2e tests.

Run it with the venv that scripts/peers.sh creates (e2e/peers/.venv/bin/python):

  py_client.py --url http://127.0.0.1:PORT/mcp --transport streamable-http
  py_client.py --url http://127.0.0.1:PORT/sse  --transport sse
  py_client.py --stdio "CMD ARGS..."            (a server spoken to over stdio)

Steps (--steps, comma-separated; default all): initialize, list, call, progress,
sampling, delete. Defaults fit server-everything; see README.md for every flag.
Prints exactly one JSON line on stdout (the summary, also on failure) and exits
0 when every selected step passed, 1 when one failed, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import warnings
from contextlib import AsyncExitStack
from typing import Any

warnings.simplefilter("ignore")

import anyio  # noqa: E402
import httpx2  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.sse import sse_client  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.shared._httpx_utils import create_mcp_http_client  # noqa: E402

ALL_STEPS = ["initialize", "list", "call", "progress", "sampling", "delete"]


class UsageError(Exception):
    pass


class StepError(Exception):
    pass


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="py_client.py", description="MCP client driver (Python SDK)")
    p.add_argument("--url")
    p.add_argument("--transport", default="streamable-http", choices=["streamable-http", "sse"])
    p.add_argument("--stdio", metavar="CMD", help="speak stdio to this shell command instead of HTTP")
    p.add_argument("--token", help="bearer token sent as Authorization on every HTTP request")
    p.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    p.add_argument("--steps", default=",".join(ALL_STEPS))
    p.add_argument("--tool", default="echo")
    p.add_argument("--args", dest="call_args", metavar="JSON")
    p.add_argument("--expect", metavar="TEXT", help="the call step's text result must contain TEXT")
    p.add_argument("--progress-tool", default="trigger-long-running-operation")
    p.add_argument("--progress-args", default='{"duration":1.5,"steps":3}', metavar="JSON")
    p.add_argument("--min-progress", type=int)
    p.add_argument("--min-lead-ms", type=int, help="first progress notification must precede the result by MS")
    p.add_argument("--sampling-tool", default="trigger-sampling-request")
    p.add_argument("--sampling-args", metavar="JSON")
    p.add_argument("--timeout-ms", type=int, default=30000)
    p.add_argument("--quiet", action="store_true")

    def _error(message: str) -> None:
        raise UsageError(message)

    p.error = _error  # type: ignore[method-assign]
    return p.parse_args(argv)


def json_object(flag: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{flag}: {e}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag}: not a JSON object")
    return value


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in (getattr(result, "content", None) or []) if getattr(c, "type", None) == "text")


class TapReceiveStream:
    """Wraps a transport's read stream and sees every inbound message in wire order.

    The SDK runs progress callbacks on spawned tasks, so when a notification and the
    response arrive together (SSE, stdio, a buffering proxy) a callback may run after
    the call returned; the progress step counts what arrived on the wire instead.
    """

    def __init__(self, inner: Any, on_message: Any) -> None:
        self._inner = inner
        self._on_message = on_message

    async def receive(self) -> Any:
        item = await self._inner.receive()
        try:
            self._on_message(getattr(item, "message", None))
        except Exception:  # never let the tap break the session
            pass
        return item

    def __aiter__(self) -> TapReceiveStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> TapReceiveStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.aclose()

    def __getattr__(self, name: str) -> Any:  # last_context, close, aclose, ...
        return getattr(self._inner, name)


class Driver:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.steps = [s.strip() for s in a.steps.split(",") if s.strip()]
        for s in self.steps:
            if s not in ALL_STEPS:
                raise UsageError(f"unknown step '{s}'")
        if bool(a.url) == bool(a.stdio):
            raise UsageError("give exactly one of --url and --stdio")
        if a.timeout_ms <= 0:
            raise UsageError("--timeout-ms must be positive")
        self.kind = "stdio" if a.stdio else a.transport
        self.timeout = a.timeout_ms / 1000.0
        nonce = secrets.token_hex(4)
        if a.call_args is not None:
            self.call_args = json_object("--args", a.call_args)
        else:
            self.call_args = {"message": f"hello from py_client {nonce}"} if a.tool == "echo" else {}
        self.expect = a.expect
        if self.expect is None and a.call_args is None and a.tool == "echo":
            self.expect = self.call_args["message"]
        self.progress_args = json_object("--progress-args", a.progress_args)
        steps_arg = self.progress_args.get("steps")
        self.min_progress = (
            a.min_progress if a.min_progress is not None else (steps_arg if isinstance(steps_arg, int) else 1)
        )
        # A streaming path delivers the first progress notification long before the result
        # (about 1 s with the default args); a buffering one delivers them all with it.
        defaults = a.progress_tool == "trigger-long-running-operation" and a.progress_args == '{"duration":1.5,"steps":3}'
        self.min_lead_ms = a.min_lead_ms if a.min_lead_ms is not None else (250 if defaults else 0)
        self.sampling_args = (
            json_object("--sampling-args", a.sampling_args)
            if a.sampling_args is not None
            else {"prompt": f"sampling probe {nonce}", "maxTokens": 20}
        )
        self.canned_reply = f"canned sampling reply {nonce}"
        self.headers: dict[str, str] = {}
        for h in a.header:
            name, sep, value = h.partition(":")
            if not sep or not name.strip():
                raise UsageError(f"--header '{h}' is not 'Name: value'")
            self.headers[name.strip()] = value.strip()
        if a.token:
            self.headers["Authorization"] = f"Bearer {a.token}"

        self.summary: dict[str, Any] = {
            "driver": "py",
            "sdk": "mcp",
            "transport": self.kind,
            "target": a.url or a.stdio,
            "ok": False,
            "steps": {},
            "error": None,
        }
        self.http: list[dict[str, Any]] = []
        self.session_id: str | None = None
        self.wire_progress: list[dict[str, Any]] = []
        self.sampling_requests = 0
        self.current = "initialize"

    def log(self, *parts: Any) -> None:
        if not self.a.quiet:
            print("py_client:", *parts, file=sys.stderr, flush=True)

    # --- HTTP plumbing -----------------------------------------------------------
    async def _on_response(self, response: httpx2.Response) -> None:
        self.http.append({"method": response.request.method, "status": response.status_code})
        sid = response.headers.get("mcp-session-id")
        if sid:
            self.session_id = sid

    def http_client(
        self, headers: dict[str, str] | None = None, timeout: Any = None, auth: Any = None
    ) -> httpx2.AsyncClient:
        merged = dict(self.headers)
        merged.update(headers or {})
        client = create_mcp_http_client(headers=merged, timeout=timeout, auth=auth)
        client.event_hooks = {"request": [], "response": [self._on_response]}
        return client

    def _on_wire(self, message: Any) -> None:
        if getattr(message, "method", None) == "notifications/progress":
            params = getattr(message, "params", None) or {}
            self.wire_progress.append({**dict(params), "at": time.monotonic()})

    # --- MCP ---------------------------------------------------------------------
    async def sampling_callback(self, context: Any, params: types.CreateMessageRequestParams) -> Any:
        self.sampling_requests += 1
        self.log(f"sampling/createMessage #{self.sampling_requests} ({len(params.messages)} message(s))")
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=self.canned_reply),
            model="toolhive-e2e-canned",
            stop_reason="endTurn",
        )

    async def step(self, name: str, fn: Any) -> None:
        self.current = name
        t0 = time.monotonic()
        out = await fn()
        self.summary["steps"][name] = {"ok": True, "ms": int((time.monotonic() - t0) * 1000), **out}
        self.log(f"{name}: ok", json.dumps(out))

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            if self.kind == "streamable-http":
                streams = await stack.enter_async_context(
                    streamable_http_client(
                        self.a.url,
                        http_client=await stack.enter_async_context(self.http_client()),
                        terminate_on_close="delete" in self.steps,
                    )
                )
            elif self.kind == "sse":
                streams = await stack.enter_async_context(
                    sse_client(
                        self.a.url, timeout=self.timeout, httpx_client_factory=self.http_client
                    )
                )
            else:
                params = StdioServerParameters(
                    command="/bin/sh", args=["-c", f"exec {self.a.stdio}"], env=dict(os.environ)
                )
                streams = await stack.enter_async_context(stdio_client(params))
            read_stream, write_stream = streams[0], streams[1]
            session = await stack.enter_async_context(
                ClientSession(
                    TapReceiveStream(read_stream, self._on_wire),
                    write_stream,
                    read_timeout_seconds=self.timeout,
                    sampling_callback=self.sampling_callback,
                    client_info=types.Implementation(name="toolhive-e2e-py-client", version="1.0.0"),
                )
            )

            # initialize always runs; the step only reports it.
            t0 = time.monotonic()
            with anyio.fail_after(self.timeout):
                init = await session.initialize()
            info = {
                "protocolVersion": init.protocol_version,
                "server": init.server_info.model_dump(exclude_none=True, by_alias=True),
                "sessionId": self.session_id,
            }
            if "initialize" in self.steps:
                self.summary["steps"]["initialize"] = {"ok": True, "ms": int((time.monotonic() - t0) * 1000), **info}
                self.log("initialize: ok", json.dumps(info))

            tool_names: list[str] | None = None

            def need_tool(name: str) -> None:
                if tool_names is not None and name not in tool_names:
                    raise StepError(f"tool '{name}' is not in tools/list ({', '.join(tool_names)})")

            if "list" in self.steps:

                async def do_list() -> dict[str, Any]:
                    nonlocal tool_names
                    tools: list[Any] = []
                    cursor = None
                    while True:
                        page = await session.list_tools(
                            params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
                        )
                        tools.extend(page.tools)
                        cursor = page.next_cursor
                        if not cursor:
                            break
                    tool_names = [t.name for t in tools]
                    if not tools:
                        raise StepError("tools/list returned no tools")
                    return {"count": len(tools), "names": tool_names}

                await self.step("list", do_list)

            if "call" in self.steps:

                async def do_call() -> dict[str, Any]:
                    need_tool(self.a.tool)
                    result = await session.call_tool(self.a.tool, self.call_args)
                    text = text_of(result)
                    if result.is_error:
                        raise StepError(f"tool '{self.a.tool}' returned isError: {text}")
                    if self.expect is not None and self.expect not in text:
                        raise StepError(f"tool '{self.a.tool}' result lacks '{self.expect}': {text}")
                    return {"tool": self.a.tool, "text": text[:500]}

                await self.step("call", do_call)

            if "progress" in self.steps:

                async def do_progress() -> dict[str, Any]:
                    tool = self.a.progress_tool
                    need_tool(tool)
                    delivered = 0

                    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                        nonlocal delivered
                        delivered += 1

                    w0 = len(self.wire_progress)
                    result = await session.call_tool(tool, self.progress_args, progress_callback=on_progress)
                    done_at = time.monotonic()
                    if result.is_error:
                        raise StepError(f"tool '{tool}' returned isError: {text_of(result)}")
                    await anyio.sleep(0.05)  # let spawned callbacks run before counting them
                    wire = self.wire_progress[w0:]
                    seen = [{"progress": p.get("progress"), "total": p.get("total")} for p in wire]
                    if len(seen) < self.min_progress:
                        raise StepError(
                            f"received {len(seen)} progress notification(s), expected at least {self.min_progress}"
                        )
                    first_lead_ms = int((done_at - wire[0]["at"]) * 1000) if wire else None
                    if first_lead_ms is not None and first_lead_ms < self.min_lead_ms:
                        raise StepError(
                            f"the first progress notification arrived only {first_lead_ms} ms before the result"
                            f" (want >= {self.min_lead_ms}): not streamed"
                        )
                    if delivered < 1:
                        raise StepError("no progress notification reached the progress callback")
                    tokens = {str(p.get("progressToken")) for p in wire}
                    if len(tokens) != 1:
                        raise StepError(f"progress notifications carried {len(tokens)} different tokens")
                    return {
                        "tool": tool,
                        "notifications": len(seen),
                        "delivered": delivered,
                        "firstLeadMs": first_lead_ms,
                        "progress": seen,
                    }

                await self.step("progress", do_progress)

            if "sampling" in self.steps:

                async def do_sampling() -> dict[str, Any]:
                    tool = self.a.sampling_tool
                    need_tool(tool)
                    before = self.sampling_requests
                    result = await session.call_tool(tool, self.sampling_args)
                    text = text_of(result)
                    if result.is_error:
                        raise StepError(f"tool '{tool}' returned isError: {text}")
                    requests = self.sampling_requests - before
                    if requests < 1:
                        raise StepError("the server sent no sampling/createMessage request")
                    if self.canned_reply not in text:
                        raise StepError(f"the canned sampling reply did not come back in the result: {text}")
                    return {"tool": tool, "requests": requests, "replySeen": True}

                await self.step("sampling", do_sampling)

            self.current = "delete" if "delete" in self.steps else "close"
            protocol_version = info["protocolVersion"]
            n_http = len(self.http)
            t0 = time.monotonic()
        # Leaving the stack closes the session; for streamable HTTP with the delete
        # step the SDK sends DELETE with the session id on the way out.

        if "delete" in self.steps:
            if self.kind != "streamable-http":
                out: dict[str, Any] = {"mode": "close"}
            else:
                out = await self.check_deleted(n_http, protocol_version)
            self.summary["steps"]["delete"] = {"ok": True, "ms": int((time.monotonic() - t0) * 1000), **out}
            self.log("delete: ok", json.dumps(out))

    async def check_deleted(self, n_http: int, protocol_version: str) -> dict[str, Any]:
        if not self.session_id:
            raise StepError("the server assigned no Mcp-Session-Id, so there is no session to delete")
        dels = [h for h in self.http[n_http:] if h["method"] == "DELETE"]
        if not dels:
            raise StepError("the SDK sent no DELETE when the session closed")
        status = dels[-1]["status"]
        if not 200 <= status <= 299:
            raise StepError(f"DELETE answered {status}, expected 2xx")
        # The session must be gone: the spec wants 404 for a terminated session id.
        async with httpx2.AsyncClient(timeout=self.timeout) as c:
            probe = await c.post(
                self.a.url,
                headers={
                    **self.headers,
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                    "mcp-session-id": self.session_id,
                    "mcp-protocol-version": protocol_version,
                },
                content=json.dumps({"jsonrpc": "2.0", "id": 999001, "method": "tools/list", "params": {}}),
            )
        if not 400 <= probe.status_code <= 499:
            raise StepError(f"a request on the deleted session answered {probe.status_code}, expected 4xx (404)")
        return {
            "mode": "terminate_on_close",
            "sessionId": self.session_id,
            "status": status,
            "afterDeleteStatus": probe.status_code,
        }


def describe(exc: BaseException) -> str:
    """The innermost useful message of an exception (task groups wrap them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, StepError | UsageError):
        text = f"{type(exc).__name__}: {text}"
    return text


async def amain(d: Driver) -> int:
    error: str | None = None
    with anyio.move_on_after(d.timeout * 4) as scope:
        try:
            await d.run()
        except Exception as e:  # noqa: BLE001 - everything becomes the summary's error
            error = describe(e)
    if error is None and scope.cancelled_caught:
        error = f"no result after {d.timeout * 4:.0f} s"
    d.summary["http"] = d.http
    if error is not None:
        # (405 on the GET stream is the spec's "no standalone stream", not an error.)
        bad = [h for h in d.http if h["status"] >= 400 and (h["method"], h["status"]) != ("GET", 405)]
        if bad:  # SDK errors often omit the HTTP status a proxy test wants to see
            error += f" [HTTP {bad[-1]['status']} on {bad[-1]['method']}]"
        d.summary["error"] = f"{d.current}: {error}"
        d.summary["steps"][d.current] = {"ok": False, "error": error}
        print(f"py_client: FAILED at {d.summary['error']}", file=sys.stderr, flush=True)
        print(json.dumps(d.summary, separators=(",", ":")), flush=True)
        return 1
    d.summary["ok"] = True
    print(json.dumps(d.summary, separators=(",", ":")), flush=True)
    return 0


def main(argv: list[str]) -> int:
    try:
        d = Driver(parse_args(argv))
    except UsageError as e:
        print(f"py_client: {e} (see --help)", file=sys.stderr)
        print(json.dumps({"driver": "py", "ok": False, "error": f"usage: {e}"}, separators=(",", ":")))
        return 2
    return anyio.run(amain, d)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
