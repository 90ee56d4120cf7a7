// bench/request-path.ts: CPU per operation of Cairn's own request path, in-process: the gRPC method's request
// deserializer, handler and response serializer exactly as buildGrpcServer registers them, over the NamingService,
// CpRegistry and RegistryStateMachine with the tests' direct proposer (no grpc-js transport, no Raft, no LevelDB).
// It isolates what Cairn's code costs per request from the transport and the log (bench/README.md "Hot path work").
//
//   node --import tsx bench/request-path.ts [--registrations 20000] [--lists 5000]
//
// The registered handlers are read from grpc-js's Server internals (`handlers`), so the serializers measured are
// the ones a real call goes through.
import { parseArgs } from 'node:util';
import { buildGrpcServer } from '../src/api/grpc/server.ts';
import { methodDefinitionOf } from '../src/api/grpc/proto.ts';
import { CpRegistry } from '../src/cp/cp-registry.ts';
import { RegistryStateMachine } from '../src/cp/registry-state-machine.ts';
import { NamingService } from '../src/naming/naming-service.ts';
import { DirectProposer } from '../test/support/direct-proposer.ts';
import { listSlot, metadataOf, registerSlot, type Slot } from './lib/driver.ts';

interface Handler {
  readonly func: (call: object, callback: (error: unknown, response?: object) => void) => void;
  readonly serialize: (value: object) => Buffer;
  readonly deserialize: (bytes: Buffer) => object;
}

const { values } = parseArgs({ options: { registrations: { type: 'string', default: '20000' }, lists: { type: 'string', default: '5000' } } });
const machine = new RegistryStateMachine();
const naming = new NamingService({ cp: new CpRegistry(new DirectProposer(machine), machine) });
const server = buildGrpcServer({ naming, ready: () => true });
const handlers = (server as unknown as { readonly handlers: Map<string, Handler> }).handlers;

function call(method: string, request: object): Promise<Buffer> {
  const handler = handlers.get(`/cairn.naming.v1.Naming/${method}`);
  if (handler === undefined) throw new Error(`no handler for ${method}`);
  const decoded = handler.deserialize(Buffer.from(methodDefinitionOf('cairn.naming.v1.Naming', method).requestSerialize(request)));
  return new Promise((resolve, reject) => {
    handler.func({ request: decoded, getDeadline: () => Infinity }, (error, response) => {
      if (error !== null || response === undefined) reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
      else resolve(handler.serialize(response));
    });
  });
}

const instance = (slot: Slot): object => ({ ip: slot.ip, port: slot.port, metadata: metadataOf(slot), ephemeral: false });

async function measure(what: string, count: number, operation: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(count, 2000); i++) await operation(count + i); // warm-up, not counted
  const start = process.cpuUsage();
  for (let i = 0; i < count; i++) await operation(i);
  const used = process.cpuUsage(start);
  process.stdout.write(`${what}: ${((used.user + used.system) / count).toFixed(1)} µs CPU/op over ${count}\n`);
}

for (let i = 0; i < 100; i++) await call('RegisterInstance', { service: 'bench-list', instance: instance(listSlot(i)) });
let next = 0;
await measure('RegisterInstance (a new instance, 16 services)', Number(values.registrations), async () => {
  const slot = registerSlot(next++, 16);
  await call('RegisterInstance', { service: `bench-reg-${slot.service}`, instance: instance(slot), requestId: `request-${next}` });
});
await measure('ListInstances LOCAL of 100', Number(values.lists), () => call('ListInstances', { service: 'bench-list', consistency: 'LOCAL' }));
await measure('ListInstances LINEARIZABLE of 100', Number(values.lists), () => call('ListInstances', { service: 'bench-list' }));
server.forceShutdown();
