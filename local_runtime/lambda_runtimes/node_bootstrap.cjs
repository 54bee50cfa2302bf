// A Lambda execution environment's Node.js runtime: imports the handler once, then runs invocations.
// Started by local_runtime/lambdas.py with the function's environment. Invocations arrive as JSON lines
// on the socket whose descriptor is argv[2]; each answer goes back the same way, after a mark line on
// stdout that tells the parent where the invocation's log ends.
'use strict';

const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const util = require('node:util');
const { pathToFileURL } = require('node:url');

const MARK = '\x1e';
let requestId = '';

// Lambda's Node.js runtimes prefix console output with the time, the request id and the level.
for (const [method, level] of [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']]) {
  console[method] = (...args) => {
    fs.writeSync(1, `${new Date().toISOString()}\t${requestId || 'undefined'}\t${level}\t${util.format(...args)}\n`);
  };
}

function errorShape(error, errorType) {
  if (error instanceof Error) {
    return {
      errorType: errorType || error.name || 'Error',
      errorMessage: error.message,
      trace: String(error.stack || '').split('\n'),
    };
  }
  return { errorType: errorType || typeof error, errorMessage: String(error), trace: [] };
}

function closeLog(mark) {
  fs.writeSync(1, `${MARK}${mark}\n`);
}

async function loadHandler() {
  const handler = process.env._HANDLER;
  const dot = handler.lastIndexOf('.');
  const moduleName = handler.slice(0, dot);
  const exportName = handler.slice(dot + 1);
  const base = path.resolve(process.env.LAMBDA_TASK_ROOT, moduleName);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((candidate) => fs.existsSync(candidate));
  if (!file) {
    const error = new Error(`Cannot find module '${moduleName}'`);
    throw Object.assign(errorShape(error, 'Runtime.ImportModuleError'), { errorMessage: `Error: Cannot find module '${moduleName}'` });
  }
  let namespace;
  try {
    namespace = await import(pathToFileURL(file).href);
  } catch (error) {
    throw errorShape(error, error instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : undefined);
  }
  const found = namespace[exportName] ?? namespace.default?.[exportName];
  if (typeof found !== 'function') {
    throw errorShape(new Error(`${handler} is undefined or not exported`), 'Runtime.HandlerNotFound');
  }
  return found;
}

function context(request) {
  const deadline = request.deadline_ms;
  return {
    awsRequestId: request.request_id,
    invokedFunctionArn: request.invoked_function_arn,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
}

// Async (promise) handlers answer with what they resolve to; callback handlers with what they pass on.
function run(handler, event, ctx) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (error, result) => {
      if (settled) return;
      settled = true;
      if (error !== null && error !== undefined) reject(error);
      else resolve(result);
    };
    try {
      const returned = handler(event, ctx, callback);
      if (returned && typeof returned.then === 'function') returned.then((r) => callback(null, r), (e) => callback(e ?? new Error('rejected')));
      else if (handler.length < 3) callback(null, returned);
    } catch (error) {
      callback(error);
    }
  });
}

async function main() {
  const channel = new net.Socket({ fd: Number(process.argv[2]), readable: true, writable: true });
  const send = (message) => channel.write(JSON.stringify(message) + '\n');
  let handler;
  try {
    handler = await loadHandler();
  } catch (failure) {
    const shape = failure.errorType ? failure : errorShape(failure);
    console.error(`${shape.errorType}: ${shape.errorMessage}`);
    closeLog('init');
    channel.end(JSON.stringify({ init_error: shape }) + '\n', () => process.exit(1));
    return;
  }
  closeLog('init');
  send({ ready: true });
  let buffered = '';
  const queue = [];
  let busy = false;
  const next = async () => {
    if (busy || queue.length === 0) return;
    busy = true;
    const request = queue.shift();
    requestId = request.request_id;
    let answer;
    try {
      const result = await run(handler, request.event, context(request));
      answer = { result: JSON.stringify(result === undefined ? null : result) };
    } catch (error) {
      answer = { error: errorShape(error) };
      console.error('Invoke Error', JSON.stringify(answer.error));
    }
    closeLog(request.request_id);
    requestId = '';
    send(answer);
    busy = false;
    next();
  };
  channel.on('data', (chunk) => {
    buffered += chunk.toString('utf8');
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      queue.push(JSON.parse(buffered.slice(0, newline)));
      buffered = buffered.slice(newline + 1);
    }
    next();
  });
  channel.on('end', () => process.exit(0));
}

main();
