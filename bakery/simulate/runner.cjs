// Runs one state machine definition with aws-local-stepfunctions; every Task is answered
// by the Python parent (bakery.simulate.run), one JSON line each way.
//
// stdin, first line: {"definition", "input", "context", "retryIntervalMs", "tasks": {state: resource}}
// stdout lines:      {"type": "call", "id", "state", "resource", "input"}   (a Task to answer)
//                    {"type": "event", "event": {...}}                        (progress)
//                    {"type": "end", "status", "output" | "error", "cause"}
// stdin, then:       {"id", "result"} or {"id", "error": {"name", "cause"}}
"use strict";

// Node 20 lacks Promise.withResolvers, which the interpreter uses for Task timeouts.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

// States.Base64Encode/Decode work on UTF-8 text on AWS (measured there: ministackorg/ministack
// PR #1360); the interpreter calls the global btoa/atob, which work on Latin-1 only, so a
// for_each row value with an "é" (base64 in the row query, bakery/compile/athena_sql.py)
// would reach a child as "Ã©".
globalThis.btoa = (text) => Buffer.from(String(text), "utf8").toString("base64");
globalThis.atob = (data) => Buffer.from(String(data), "base64").toString("utf8");

const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");
const readline = require("node:readline");

// The interpreter removes every backslash from the string any intrinsic function returns
// (BaseIntrinsicFunction.call), to undo the escapes of States.Format's template. Step
// Functions changes no function's result, so a backslash in data (a for_each row value that
// States.Base64Decode decodes) would vanish here only: it is loaded with that removal kept
// for States.Format alone.
const STRIP = 'if (typeof result === "string") {\n      result = result.replaceAll("\\\\", "");';
const FORMAT_ONLY = STRIP.replace(
  'if (typeof result === "string")',
  'if (typeof result === "string" && this.funcDefinition.name === "States.Format")'
);

function loadInterpreter(root) {
  const file = require.resolve(path.join(root, "node_modules", "aws-local-stepfunctions"));
  const source = fs.readFileSync(file, "utf8");
  if (!source.includes(STRIP)) {
    throw new Error(
      `${file} is not the aws-local-stepfunctions bakery/simulate/runner.cjs patches ` +
        "(its intrinsic functions' backslash removal is gone): check the patch"
    );
  }
  const loaded = new Module(file, module);
  loaded.filename = file;
  loaded.paths = Module._nodeModulePaths(path.dirname(file));
  loaded._compile(source.replace(STRIP, FORMAT_ONLY), file);
  return loaded.exports;
}

const root = process.env.BAKERY_NODE_ROOT || process.cwd();
const { StateMachine, ExecutionError, ExecutionTimeoutError } = loadInterpreter(root);

function send(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

const pending = new Map();
let nextId = 0;

class TaskError extends Error {
  constructor(name, cause) {
    super(cause);
    this.name = name;
  }
}

function call(state, resource, input) {
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ type: "call", id, state, resource, input });
  });
}

function brief(event) {
  // Events without the (possibly large) state data: the parent reports progress and tests
  // assert on the path taken.
  const out = { type: event.type };
  for (const key of ["index", "parentState"]) {
    if (event[key] !== undefined) out[key] = key === "parentState" ? event[key].name : event[key];
  }
  if (event.state) out.state = event.state.name;
  if (event.Error !== undefined) out.error = event.Error;
  if (event.Cause !== undefined) {
    out.cause = typeof event.Cause === "string" ? event.Cause : String(event.Cause.message || event.Cause);
  }
  if (event.retry !== undefined) {
    out.retrier = event.retry.retrier.ErrorEquals;
    out.attempt = event.retry.attempt;
  }
  return out;
}

async function main(request) {
  const handlers = {};
  const retryOverrides = {};
  const context = request.context || {};
  context.BakeryItems = {};
  for (const [state, resource] of Object.entries(request.tasks)) {
    handlers[state] = async (input) => {
      const result = await call(state, resource, input);
      if (resource === "bakery:itemReader") {
        // Distributed Map items: the interpreter reads no ItemReader, so the items read here
        // are where the rewritten Map's ItemsPath points ($$.BakeryItems.<key>).
        context.BakeryItems[input.Key] = result;
        return null;
      }
      return result;
    };
  }
  for (const state of request.retrying || []) retryOverrides[state] = request.retryIntervalMs || 0;

  const machine = new StateMachine(request.definition, {
    validationOptions: { noValidate: true },
  });
  const execution = machine.run(request.input, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides: retryOverrides },
    context,
  });
  const forward = (async () => {
    for await (const event of execution.eventLogs) send({ type: "event", event: brief(event) });
  })();
  try {
    const output = await execution.result;
    await forward.catch(() => {});
    send({ type: "end", status: "SUCCEEDED", output });
  } catch (err) {
    await forward.catch(() => {});
    if (err instanceof ExecutionTimeoutError) {
      send({ type: "end", status: "TIMED_OUT", error: "States.Timeout", cause: err.message });
    } else if (err instanceof ExecutionError) {
      const cause = err.cause || {};
      send({ type: "end", status: "FAILED", error: cause.name, cause: cause.message });
    } else {
      send({ type: "end", status: "FAILED", error: err.name, cause: String(err.message) });
    }
  }
}

// When several Map iterations fail, the interpreter awaits the first failure only; the
// others are the same failure's echoes and must not end the process.
process.on("unhandledRejection", () => {});

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
let started = false;
lines.on("line", (line) => {
  if (!line.trim()) return;
  const message = JSON.parse(line);
  if (!started) {
    started = true;
    // Exit only once stdout is written out: process.exit() would drop what a pipe has
    // not taken yet, the "end" line included.
    const finish = (code) => process.stdout.write("", () => process.exit(code));
    main(message).then(() => finish(0), (err) => {
      send({ type: "end", status: "ERROR", error: err.name, cause: String(err.stack || err) });
      finish(1);
    });
    return;
  }
  const waiter = pending.get(message.id);
  if (!waiter) return;
  pending.delete(message.id);
  if (message.error) waiter.reject(new TaskError(message.error.name, message.error.cause));
  else waiter.resolve(message.result);
});
