// Nacos's parameter conventions (reference/NACOS.md §1.1), in one place so every route reads its input the same way.
//
// - A parameter comes from the query string or from the body (form-encoded or JSON), the query string first, like
//   the servlet's getParameter(). A repeated parameter counts once: its first value.
// - A blank value (empty or only whitespace) is the same as an absent one: optional parameters take their default,
//   required ones answer 400 `Param '<name>' is required.` (Nacos's WebUtils.required/optional).
// - Types are checked here, strictly: a number that is not a number, a boolean that is neither true nor false,
//   metadata that is neither a JSON object of strings nor `k=v,k=v` is a 400 naming the parameter. Nacos answers
//   500 to a malformed port (NumberFormatException) and reads any word but "true" as false; Cairn refuses instead
//   (docs/nacos-compatibility.md). Ranges and name rules are the naming layer's (src/naming/validation.ts).
//
// Every error thrown here is a CairnError CAIRN_INVALID_ARGUMENT whose details name the parameter and say whether it
// was missing or invalid, so the v2 adapter can choose Nacos's numeric code (10000 missing, 20002 invalid, ...).

import { CairnError } from '../../errors.ts';
import { DEFAULT_GROUP, DEFAULT_NAMESPACE, parseGroupedName, type Metadata, type Selector, type ServiceKey } from '../../naming/model.ts';
import { parseMetadata, parseSelector, validateRequestId } from '../../naming/validation.ts';
import type { Consistency } from '../../naming/naming-service.ts';
import { limits } from '../../limits.ts';

/** ParamProblem says why a parameter was refused: missing (absent or blank) or present but invalid. */
export type ParamProblem = 'missing' | 'invalid';

/** paramMissing is the error for a required parameter that is absent or blank, with Nacos's message. */
export function paramMissing(name: string): CairnError {
  return new CairnError('CAIRN_INVALID_ARGUMENT', `Param '${name}' is required.`, {
    details: { parameter: name, problem: 'missing' satisfies ParamProblem },
  });
}

/** paramInvalid is the error for a parameter whose value is malformed; `why` completes "Param 'x' ...". */
export function paramInvalid(name: string, why: string): CairnError {
  return new CairnError('CAIRN_INVALID_ARGUMENT', `Param '${name}' ${why}`, {
    details: { parameter: name, problem: 'invalid' satisfies ParamProblem },
  });
}

/** javaIntMax bounds integer parameters: Nacos reads them as Java ints, so a larger value is malformed there too. */
const javaIntMax = 2_147_483_647;
const integerPattern = /^[+-]?\d{1,10}$/;
const decimalPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?$/;

/** IntegerRange bounds an integer parameter; both ends are inclusive. */
export interface IntegerRange {
  readonly min?: number;
  readonly max?: number;
}

/** firstValue reduces a parsed query or body value to one string, or undefined when it carries nothing. */
function firstValue(value: unknown): string | undefined {
  const first: unknown = Array.isArray(value) ? value[0] : value;
  if (first === undefined || first === null) return undefined;
  if (typeof first === 'string') return first;
  if (typeof first === 'number' || typeof first === 'boolean') return String(first);
  // A JSON body may carry metadata, a selector or a health checker as an object: keep it as JSON text.
  return JSON.stringify(first);
}

function entriesOf(source: unknown): Array<[string, unknown]> {
  if (source === null || typeof source !== 'object' || Array.isArray(source)) return [];
  return Object.entries(source);
}

/** NacosParams reads one request's parameters with Nacos's conventions; see the file comment. */
export class NacosParams {
  readonly #values: ReadonlyMap<string, string>;

  constructor(values: ReadonlyMap<string, string>) {
    this.#values = values;
  }

  /** from merges a request's parsed query string and body (the query string wins, as getParameter's first value). */
  static from(query: unknown, body: unknown): NacosParams {
    const values = new Map<string, string>();
    for (const source of [query, body]) {
      for (const [key, value] of entriesOf(source)) {
        const text = firstValue(value);
        if (text !== undefined && !values.has(key)) values.set(key, text);
      }
    }
    return new NacosParams(values);
  }

  /** optional returns the first non-blank value among `name` and its legacy aliases, or undefined. */
  optional(name: string, ...aliases: readonly string[]): string | undefined {
    for (const key of [name, ...aliases]) {
      const value = this.#values.get(key);
      if (value !== undefined && value.trim() !== '') return value;
    }
    return undefined;
  }

  /** required returns the value of `name` (or an alias); absent or blank is a 400 naming `name`. */
  required(name: string, ...aliases: readonly string[]): string {
    const value = this.optional(name, ...aliases);
    if (value === undefined) throw paramMissing(name);
    return value;
  }

  /** integer parses an optional integer parameter within `range`; undefined when absent or blank. */
  integer(name: string, range: IntegerRange = {}): number | undefined {
    const text = this.optional(name);
    if (text === undefined) return undefined;
    const trimmed = text.trim();
    const value = integerPattern.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!Number.isSafeInteger(value) || Math.abs(value) > javaIntMax) throw paramInvalid(name, `must be an integer (got '${clip(text)}').`);
    const { min, max } = range;
    if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
      throw paramInvalid(name, `must be between ${min ?? '-2147483648'} and ${max ?? javaIntMax} (got ${value}).`);
    }
    return value;
  }

  /** requiredInteger is integer() for a parameter that must be present. */
  requiredInteger(name: string, range: IntegerRange = {}): number {
    const value = this.integer(name, range);
    if (value === undefined) throw paramMissing(name);
    return value;
  }

  /** number parses an optional decimal parameter (Java's Double.parseDouble without NaN and Infinity). */
  number(name: string): number | undefined {
    const text = this.optional(name);
    if (text === undefined) return undefined;
    const trimmed = text.trim();
    const value = decimalPattern.test(trimmed) ? Number(trimmed) : Number.NaN;
    if (!Number.isFinite(value)) throw paramInvalid(name, `must be a number (got '${clip(text)}').`);
    return value;
  }

  /** requiredNumber is number() for a parameter that must be present. */
  requiredNumber(name: string): number {
    const value = this.number(name);
    if (value === undefined) throw paramMissing(name);
    return value;
  }

  /** boolean parses an optional `true`/`false` (any case) from `name` or its aliases; anything else is a 400. */
  boolean(name: string, ...aliases: readonly string[]): boolean | undefined {
    const text = this.optional(name, ...aliases);
    if (text === undefined) return undefined;
    const lower = text.trim().toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    throw paramInvalid(name, `must be true or false (got '${clip(text)}').`);
  }

  /** metadata parses an optional metadata parameter with Nacos's formats: a JSON object of scalars, or `k1=v1,k2=v2`. */
  metadata(name: string): Metadata | undefined {
    const text = this.optional(name);
    return text === undefined ? undefined : parseMetadata(text, name);
  }

  /** selector parses an optional selector parameter (`{"type":"none"}` or `{"type":"label","expression":...}`). */
  selector(name: string): Selector | undefined {
    const text = this.optional(name);
    return text === undefined ? undefined : parseSelector(text, name);
  }

  /** jsonObject parses an optional parameter holding a JSON object; undefined when absent or blank. */
  jsonObject(name: string): Record<string, unknown> | undefined {
    const text = this.optional(name);
    if (text === undefined) return undefined;
    const parsed = parseJson(text);
    if (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw paramInvalid(name, `must be a JSON object (got '${clip(text)}').`);
    }
    return parsed as Record<string, unknown>;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** clip shortens a value quoted in an error message, so a huge parameter does not make a huge answer. */
export function clip(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

/**
 * serviceKeyOf reads a service reference as Nacos's name filter does: `namespaceId` (default public), `serviceName`
 * (legacy `dom`) and `groupName` (default DEFAULT_GROUP); a serviceName already holding `group@@` keeps its own
 * group, and must split into a non-empty group and service (NamingUtils.checkServiceNameFormat).
 */
export function serviceKeyOf(params: NacosParams): ServiceKey {
  const namespace = params.optional('namespaceId') ?? DEFAULT_NAMESPACE;
  const name = params.required('serviceName', 'dom');
  const { group, service } = parseGroupedName(name, params.optional('groupName') ?? DEFAULT_GROUP);
  return { namespace, group, service };
}

/** consistencyOf reads the `consistency` parameter: `local` (default) or `linearizable`. */
export function consistencyOf(params: NacosParams): Consistency {
  const value = params.optional('consistency');
  if (value === undefined || value === 'local') return 'local';
  if (value === 'linearizable') return 'linearizable';
  throw paramInvalid('consistency', `must be local or linearizable (got '${clip(value)}').`);
}

/** Page is a 1-based page of a list. */
export interface Page {
  readonly pageNo: number;
  readonly pageSize: number;
}

/**
 * pageSizeMax bounds one page. A namespace never holds more services than this, so any larger page size is
 * answered whole, never silently cut (clients page on `count`).
 */
export const pageSizeMax = limits.servicesPerNamespaceMax;

/** pageOf reads `pageNo`/`pageSize`; when `required`, both must be present (v1's service/list), else defaults apply. */
export function pageOf(params: NacosParams, required: boolean, defaults: Page = { pageNo: 1, pageSize: 20 }): Page {
  const range = { min: 1 };
  const pageNo = required ? params.requiredInteger('pageNo', range) : params.integer('pageNo', range) ?? defaults.pageNo;
  const size = required ? params.requiredInteger('pageSize', range) : params.integer('pageSize', range) ?? defaults.pageSize;
  return { pageNo, pageSize: Math.min(size, pageSizeMax) };
}

/** requestIdHeaders are the headers a client may carry its request id in: Cairn's, then the Nacos clients'. */
export const requestIdHeaders: readonly string[] = Object.freeze(['cairn-request-id', 'requestid']);

/**
 * requestIdOf returns the client's request id (Cairn-Request-Id, else Nacos's RequestId), or undefined when none
 * was sent. A write resent with the same id is recognised and not applied twice. Ids are 1-128 printable ASCII.
 */
export function requestIdOf(headers: Readonly<Record<string, string | string[] | undefined>>): string | undefined {
  for (const name of requestIdHeaders) {
    const raw = headers[name];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined || value === '') continue;
    return validateRequestId(value, name);
  }
  return undefined;
}

const hostPortPattern = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]{1,253})):(\d{1,5})$/;

/** memberAddress validates a member address parameter `host:port` (IPv6 as `[addr]:port`) and returns it as given. */
export function memberAddress(params: NacosParams, name: string): string {
  const value = params.required(name).trim();
  const match = hostPortPattern.exec(value);
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || !(port >= 1 && port <= 65535)) {
    throw paramInvalid(name, `must be a member address HOST:PORT (got '${clip(value)}').`);
  }
  return value;
}

/** ClientKind is what the client's version header says it is, which decides a few of Nacos's response details. */
export interface ClientKind {
  /** javaV1 is true for a Java client (or one that says it is, like the npm client) of version 1.0.0 or newer. */
  readonly javaV1: boolean;
}

/**
 * clientKindOf reads `User-Agent`, else (when it is absent or empty) `Client-Version`, as Nacos's
 * WebUtils.getUserAgent does before ClientInfo parses it. The Java client sends both, `Client-Version` as a bare
 * version ("1.4.1") that names no client, so reading it first would take a Java client for curl. This only shapes
 * responses (grouped `dom`, update-versus-upsert on PUT); it never authorizes anything (DESIGN.md, Security).
 */
export function clientKindOf(headers: Readonly<Record<string, string | string[] | undefined>>): ClientKind {
  const pick = (raw: string | string[] | undefined): string | undefined => (Array.isArray(raw) ? raw[0] : raw);
  const agent = pick(headers['user-agent']) || pick(headers['client-version']) || '';
  const match = /^Nacos-Java-Client:v(\d+)\./.exec(agent);
  return { javaV1: match !== null && Number(match[1]) >= 1 };
}

/** Compact is T with every property that may be undefined made optional and never undefined. */
export type Compact<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/**
 * compact drops the properties whose value is undefined, so an absent parameter is an absent field (the naming
 * layer's optional fields, under exactOptionalPropertyTypes) rather than a field holding undefined.
 */
export function compact<T extends object>(value: T): Compact<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Compact<T>;
}
