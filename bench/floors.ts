// bench/floors: what Node's transports cost per message on this machine, whoever uses them: the floor under Cairn's
// per-write CPU that no change in Cairn's own code can lower. Two measurements, each alternated twice:
//
// - stream: one message each way between two gRPC servers over grpc-js client-streaming calls (the shape of Cairn's
//   Raft transport, src/replica/grpc-transport.ts: one call per direction) against the same exchange over two plain
//   TCP sockets with a 4-byte length prefix; a 600-byte message (one registration's entry) and a 30 000-byte one (a
//   64-entry append). Both ends run in this process, so the CPU is a round trip's at both ends together.
// - unary: a grpc-js client (the bench's client, src of every Cairn gRPC row in bench/main.ts) calling a server in a
//   child process that is either grpc-js or a bare node:http2 handler speaking the gRPC wire format (5-byte prefix,
//   trailers); the server's CPU per call, at 1 and 64 calls in flight. The bare handler is the least any Node gRPC
//   server can spend.
//
//   node --import tsx bench/floors.ts [--round-trips 20000] [--calls 20000]
//
// Prints one JSON object; bench/README.md ("What session 17 measured") keeps the day's figures.
import * as grpc from '@grpc/grpc-js';
import { fork, type ChildProcess } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const identity = (bytes: Buffer): Buffer => bytes;
const streamPath = '/floors.Floors/Stream';
const unaryPath = '/floors.Floors/Call';
/** frameBytesMax bounds one length-prefixed frame of the raw TCP exchange (the largest message it sends is 30 000 B). */
const frameBytesMax = 1 << 20;
/** replyBytes is the unary answer's size: about a RegisterInstance response. */
const replyBytes = 200;
/** requestBytes is the unary request's size: about the bench's RegisterInstance request. */
const requestBytes = 450;

interface Cpu {
  readonly user: number;
  readonly system: number;
}

function cpuSince(start: Cpu): number {
  const now = process.cpuUsage(start);
  return now.user + now.system;
}

function serviceDefinition(): grpc.ServiceDefinition {
  const method = (path: string, requestStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
    path, requestStream, responseStream: false,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  });
  return { Stream: method(streamPath, true), Call: method(unaryPath, false) };
}

function bindGrpc(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error === null ? resolve(port) : reject(error)));
  });
}

/** RoundTrip sends one message from side A and resolves when side B's echo of it is back at A. */
interface Exchange {
  send(payload: Buffer): void;
  onEcho(handler: () => void): void;
  close(): void;
}

async function grpcExchange(): Promise<Exchange> {
  let atA: () => void = () => {};
  let atB: (message: Buffer) => void = () => {};
  const serve = async (deliver: (message: Buffer) => void): Promise<{ server: grpc.Server; port: number }> => {
    const server = new grpc.Server();
    server.addService(serviceDefinition(), {
      Stream: (call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        call.on('data', deliver);
        call.on('end', () => done(null, Buffer.alloc(0)));
      },
      Call: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => done(null, Buffer.alloc(0)),
    });
    return { server, port: await bindGrpc(server) };
  };
  const a = await serve(() => atA());
  const b = await serve((message) => atB(message));
  const towardsB = new grpc.Client(`127.0.0.1:${b.port}`, grpc.credentials.createInsecure());
  const towardsA = new grpc.Client(`127.0.0.1:${a.port}`, grpc.credentials.createInsecure());
  const ignore = (): void => {};
  const streamAB = towardsB.makeClientStreamRequest(streamPath, identity, identity, new grpc.Metadata(), {}, ignore);
  const streamBA = towardsA.makeClientStreamRequest(streamPath, identity, identity, new grpc.Metadata(), {}, ignore);
  streamAB.on('error', ignore);
  streamBA.on('error', ignore);
  atB = (message) => streamBA.write(message);
  return {
    send: (payload) => streamAB.write(payload),
    onEcho: (handler) => { atA = handler; },
    close: () => {
      streamAB.cancel();
      streamBA.cancel();
      towardsA.close();
      towardsB.close();
      a.server.forceShutdown();
      b.server.forceShutdown();
    },
  };
}

/** readFrames calls `deliver` with each length-prefixed frame read from `socket`. */
function readFrames(socket: net.Socket, deliver: (frame: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (length > frameBytesMax) {
        socket.destroy(new Error(`frame of ${length} bytes is over ${frameBytesMax}`));
        return;
      }
      if (pending.length < 4 + length) break;
      deliver(pending.subarray(4, 4 + length));
      pending = pending.subarray(4 + length);
    }
  });
}

function writeFrame(socket: net.Socket, payload: Buffer): void {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(payload.length, 0);
  socket.cork();
  socket.write(header);
  socket.write(payload);
  process.nextTick(() => socket.uncork());
}

async function tcpExchange(): Promise<Exchange> {
  let atA: () => void = () => {};
  let atB: (message: Buffer) => void = () => {};
  const listen = (deliver: (frame: Buffer) => void): Promise<net.Server> => new Promise((resolve) => {
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      readFrames(socket, deliver);
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
  const connect = (server: net.Server): Promise<net.Socket> => new Promise((resolve, reject) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const socket = net.connect(address.port, '127.0.0.1', () => {
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
  const a = await listen(() => atA());
  const b = await listen((message) => atB(message));
  const towardsB = await connect(b);
  const towardsA = await connect(a);
  atB = (message) => writeFrame(towardsA, message);
  return {
    send: (payload) => writeFrame(towardsB, payload),
    onEcho: (handler) => { atA = handler; },
    close: () => {
      towardsA.destroy();
      towardsB.destroy();
      a.close();
      b.close();
    },
  };
}

/** pingPong runs `roundTrips` sequential round trips (after a tenth as many to warm up); µs of wall time and CPU each. */
async function pingPong(exchange: Exchange, payloadBytes: number, roundTrips: number): Promise<{ wallUs: number; cpuUs: number }> {
  const payload = Buffer.alloc(payloadBytes, 7);
  const run = (count: number): Promise<void> => new Promise((resolve) => {
    let left = count;
    exchange.onEcho(() => {
      left -= 1;
      if (left === 0) resolve();
      else exchange.send(payload);
    });
    exchange.send(payload);
  });
  await run(Math.max(1, Math.floor(roundTrips / 10)));
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run(roundTrips);
  const wallMs = performance.now() - started;
  return { wallUs: round(wallMs * 1000 / roundTrips), cpuUs: round(cpuSince(cpu) / roundTrips) };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

// ---------------------------------------------------------------------------------------------------------------
// The unary server, in a child process: `floors.ts --serve grpc|http2` prints nothing, answers its parent's
// { port } and { cpu } questions over IPC.

async function serve(kind: string): Promise<void> {
  const reply = Buffer.alloc(replyBytes, 3);
  let port: number;
  if (kind === 'grpc') {
    const server = new grpc.Server();
    server.addService(serviceDefinition(), {
      Stream: (call: grpc.ServerReadableStream<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => call.on('end', () => done(null, reply)),
      Call: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => done(null, reply),
    });
    port = await bindGrpc(server);
  } else {
    // The gRPC wire format by hand: a length-prefixed message, then the status in trailers sent with the data's end.
    const framed = Buffer.allocUnsafe(5 + reply.length);
    framed[0] = 0;
    framed.writeUInt32BE(reply.length, 1);
    reply.copy(framed, 5);
    const server = http2.createServer();
    server.on('stream', (stream) => {
      let received = 0;
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > frameBytesMax) stream.close(http2.constants.NGHTTP2_CANCEL);
      });
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(framed);
      });
      stream.on('error', () => {});
    });
    port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(address !== null && typeof address !== 'string' ? address.port : 0);
    }));
  }
  process.send?.({ port });
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
    if (message === 'exit') process.exit(0);
  });
}

function ask<T>(child: ChildProcess, question: string | null): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the unary server did not answer within 10 s')), 10_000);
    child.once('message', (answer) => {
      clearTimeout(timer);
      resolve(answer as T);
    });
    if (question !== null) child.send(question);
  });
}

async function unary(kind: 'grpc' | 'http2', inFlight: number, calls: number): Promise<{ callsPerSecond: number; serverCpuUs: number; clientCpuUs: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const { port } = await ask<{ port: number }>(child, null);
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const request = Buffer.alloc(requestBytes, 1);
    const call = (): Promise<void> => new Promise((resolve, reject) => {
      client.makeUnaryRequest(unaryPath, identity, identity, request, (error) => (error === null ? resolve() : reject(error)));
    });
    const run = async (count: number): Promise<void> => {
      let left = count;
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (left > 0) {
          left -= 1;
          await call();
        }
      }));
    };
    await run(Math.max(inFlight, Math.floor(calls / 10)));
    const before = await ask<{ cpu: Cpu }>(child, 'cpu');
    const cpu = process.cpuUsage();
    const started = performance.now();
    await run(calls);
    const wallMs = performance.now() - started;
    const clientCpu = cpuSince(cpu);
    const after = await ask<{ cpu: Cpu }>(child, 'cpu');
    client.close();
    const serverCpu = after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system;
    return { callsPerSecond: Math.round(calls / wallMs * 1000), serverCpuUs: round(serverCpu / calls), clientCpuUs: round(clientCpu / calls) };
  } finally {
    child.send('exit');
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    serve: { type: 'string' }, 'round-trips': { type: 'string', default: '20000' }, calls: { type: 'string', default: '20000' },
  } });
  if (values.serve !== undefined) {
    await serve(values.serve);
    return;
  }
  const roundTrips = Number(values['round-trips']);
  const calls = Number(values.calls);
  if (!Number.isSafeInteger(roundTrips) || roundTrips < 10 || roundTrips > 1_000_000) throw new Error('--round-trips: an integer in [10, 1000000]');
  if (!Number.isSafeInteger(calls) || calls < 64 || calls > 1_000_000) throw new Error('--calls: an integer in [64, 1000000]');
  const stream: Array<Record<string, unknown>> = [];
  for (let pass = 0; pass < 2; pass++) {
    for (const bytes of [600, 30_000]) {
      for (const [name, open] of [['grpc-js stream', grpcExchange], ['tcp', tcpExchange]] as const) {
        const exchange = await open();
        try {
          stream.push({ transport: name, bytes, ...(await pingPong(exchange, bytes, roundTrips)) });
        } finally {
          exchange.close();
        }
      }
    }
  }
  const unaryRows: Array<Record<string, unknown>> = [];
  for (let pass = 0; pass < 2; pass++) {
    for (const inFlight of [1, 64]) {
      for (const kind of ['grpc', 'http2'] as const) unaryRows.push({ server: kind === 'grpc' ? 'grpc-js' : 'bare node:http2', inFlight, ...(await unary(kind, inFlight, calls)) });
    }
  }
  console.log(JSON.stringify({ node: process.version, roundTrips, calls, stream, unary: unaryRows }, null, 1));
}

await main();
