// beat: Nacos's client beat, `PUT /nacos/v1/ns/instance/beat` and `PUT /nacos/v2/ns/instance/beat` (reference/NACOS.md
// §1.4, §1.9): parameters `serviceName` (possibly `group@@name`), `groupName`, `namespaceId`, `clusterName`, `ip`,
// `port`, and `beat`, the client's RsInfo JSON `{ip, port, serviceName, cluster, weight, metadata, scheduled, ...}`.
// ip, port and cluster come from the beat body when it carries them, else from the parameters, as in Nacos 1.4's
// InstanceController.beat (the body is the instance's own record; the parameters only name it when there is none). The answer is never enveloped, on v2 too:
// `{"clientBeatInterval":5000,"code":10200,"lightBeatEnabled":true}` or, for an unknown instance without a beat body,
// `{"clientBeatInterval":5000,"code":20404}`.

import { DEFAULT_CLUSTER, type Metadata } from '../../naming/model.ts';
import type { BeatResult, InstanceAddress } from '../../naming/naming-service.ts';
import { clip, paramInvalid, paramMissing, serviceKeyOf, type NacosParams } from './params.ts';

/** BeatRequest is a parsed beat: the instance's address and, when the client sent a body, its weight and metadata. */
export type BeatRequest = InstanceAddress & { readonly instance?: { readonly weight?: number; readonly metadata?: Metadata } };

/** NacosBeatAnswer is the body of a beat's answer (Nacos's field order). */
export type NacosBeatAnswer =
  | { readonly clientBeatInterval: number; readonly code: 10200; readonly lightBeatEnabled: true }
  | { readonly clientBeatInterval: number; readonly code: 20404 };

function beatField(what: string): never {
  throw paramInvalid('beat', `must be Nacos's beat JSON: ${what}`);
}

function beatText(beat: Record<string, unknown>, key: string): string | undefined {
  const value = beat[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') beatField(`'${key}' must be a string`);
  return value;
}

function beatNumber(beat: Record<string, unknown>, key: string): number | undefined {
  const value = beat[key];
  if (value === undefined || value === null || value === '') return undefined;
  const number = typeof value === 'string' && /^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(value.trim()) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isFinite(number)) beatField(`'${key}' must be a number (got ${clip(JSON.stringify(value) ?? '')})`);
  return number;
}

function beatMetadata(beat: Record<string, unknown>): Metadata | undefined {
  const value = beat['metadata'];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) beatField("'metadata' must be an object");
  const entries: Array<[string, string]> = [];
  for (const [key, item] of Object.entries(value)) {
    // A null value leaves its key out, as parseMetadata does (Jackson keeps a null that Java reads as absent).
    if (item === null) continue;
    if (typeof item === 'string') entries.push([key, item]);
    else if (typeof item === 'number' || typeof item === 'boolean') entries.push([key, String(item)]);
    else beatField(`metadata value of '${clip(key)}' must be a string`);
  }
  return Object.fromEntries(entries);
}

/** beatRequestOf reads a beat's parameters and body; a malformed body is a 400 naming `beat`. */
export function beatRequestOf(params: NacosParams): BeatRequest {
  const service = serviceKeyOf(params);
  const beat = params.jsonObject('beat');
  // The parameters are read (and so validated) even when the body overrides them: a malformed one is still a 400.
  const ipParam = params.optional('ip');
  const portParam = params.integer('port', { min: 0, max: 65_535 });
  const clusterParam = params.optional('clusterName', 'cluster');
  const ip = (beat === undefined ? undefined : beatText(beat, 'ip')) ?? ipParam;
  if (ip === undefined) throw paramMissing('ip');
  const port = (beat === undefined ? undefined : beatNumber(beat, 'port')) ?? portParam;
  if (port === undefined) throw paramMissing('port');
  if (!Number.isInteger(port) || port < 0 || port > 65_535) beatField(`'port' must be an integer within 0..65535 (got ${port})`);
  const cluster = (beat === undefined ? undefined : beatText(beat, 'cluster')) ?? clusterParam ?? DEFAULT_CLUSTER;
  const address: InstanceAddress = { ...service, ip, port, cluster };
  if (beat === undefined) return address;
  const weight = beatNumber(beat, 'weight');
  const metadata = beatMetadata(beat);
  return { ...address, instance: { ...(weight === undefined ? {} : { weight }), ...(metadata === undefined ? {} : { metadata }) } };
}

/** beatAnswerOf is Nacos's answer to a beat. */
export function beatAnswerOf(result: BeatResult): NacosBeatAnswer {
  return result.found
    ? { clientBeatInterval: result.clientBeatIntervalMs, code: 10200, lightBeatEnabled: true }
    : { clientBeatInterval: result.clientBeatIntervalMs, code: 20404 };
}
