// validation: Nacos's parameter rules (NACOS.md §1.2, §1.5, §4.1, §5.6) plus Cairn's limits, as pure functions.
// Every check either returns a normalised, frozen value or throws a CairnError whose message names the parameter
// (details.parameter carries it too). Both the NamingService and the decoder of Raft commands use these, so a
// value is valid in the log exactly when it is valid at the API.
//
// Where Cairn differs from Nacos (docs/nacos-compatibility.md):
// - Names reject ASCII control characters (Nacos's patterns let NUL through; Cairn's storage keys use it as a
//   separator), and the service-name rules (no whitespace, no CJK, no '@@', no leading '@') hold for every
//   character, the first included (Nacos's pattern exempts the first character from the whitespace/CJK rule).
// - A group is never empty (Nacos refuses an empty group inside a grouped name, too).
// - Instance ports may be 0 (Nacos accepts 0..65535, and Dubbo registers consumers with port 0); such an instance
//   is never probed successfully by a TCP or HTTP checker.
// - Metadata in `k=v` form: an empty key is refused (Java's split let `=v` through with key ""). A trailing comma is
//   tolerated, as Java's split does.
// - A health checker of an unknown type is refused with a clear error (Nacos silently falls back to NONE, which
//   turns a typo into "never probed"). Type names are matched case-insensitively.
// - HTTP checker: `path` must be empty or start with '/', header names must be HTTP tokens; MySQL checker: `user` is
//   required and `sql` defaults to Nacos's read_only query. New HTTP checkers are also refused a header a probe cannot
//   send (validateProbeHeaders; the API only, never the log's decoder).

import { CairnError, type CairnErrorCode } from '../errors.ts';
import { limits } from '../limits.ts';
import { assertNever } from '../assert.ts';
import {
  DEFAULT_HTTP_EXPECTED_RESPONSE_CODE,
  MYSQL_READ_ONLY_SQL,
  WEIGHT_MAX,
  type FixedInterval,
  type HealthChecker,
  type InstanceKey,
  type Metadata,
  type Selector,
  type ServiceKey,
} from './model.ts';

function fail(code: CairnErrorCode, parameter: string, message: string): never {
  throw new CairnError(code, message, { details: { parameter } });
}

function invalid(parameter: string, message: string): never {
  return fail('CAIRN_INVALID_ARGUMENT', parameter, message);
}

// ASCII control characters (C0 and DEL): never part of a name; NUL separates the parts of storage keys.
const controlCharacter = /[\u0000-\u001f\u007f]/;
const whitespaceOrCjk = /[\s\u4e00-\u9fa5]/;

// A UTF-16 surrogate without its pair: no Unicode text holds one, and UTF-8 (the log's and the peers' encoding) cannot
// carry it, so a value holding one would be stored, replicated or compared as some other string. JSON's \ud800 escape
// and protobufjs's lenient UTF-8 decoder both let one through. Session 31's audit sent one in ephemeral metadata: the
// Distro batch that carried it was refused by every peer, and the valid writes of other clients in that batch with it.
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** requireWellFormed refuses a string holding a lone surrogate (see loneSurrogate). */
function requireWellFormed(value: string, parameter: string): void {
  if (loneSurrogate.test(value)) invalid(parameter, `Param '${parameter}' is not well-formed Unicode text (a lone UTF-16 surrogate)`);
}

function requireString(value: unknown, parameter: string): string {
  if (typeof value !== 'string') invalid(parameter, `Param '${parameter}' must be a string`);
  if (value === '') invalid(parameter, `Param '${parameter}' is required.`);
  requireWellFormed(value, parameter);
  return value;
}

function requireLength(value: string, parameter: string, max: number): void {
  if (value.length > max) {
    fail('CAIRN_NAME_TOO_LONG', parameter, `Param '${parameter}' is longer than ${max} characters (got ${value.length})`);
  }
}

function requirePattern(value: string, parameter: string, pattern: RegExp, allowed: string): void {
  if (!pattern.test(value)) invalid(parameter, `Param '${parameter}' can only have these characters: ${allowed}`);
}

/** validateNamespace checks a namespace id: 1..64 chars of [A-Za-z0-9_-] (Nacos 2.x's `^[\w-]+`). */
export function validateNamespace(value: unknown, parameter = 'namespaceId'): string {
  const text = requireString(value, parameter);
  requireLength(text, parameter, limits.namespaceIdCharsMax);
  requirePattern(text, parameter, /^[\w-]+$/, '0-9a-zA-Z_-');
  return text;
}

/** validateGroup checks a group name: 1..128 chars of [A-Za-z0-9-_:.] (Nacos 2.x's pattern, never empty). */
export function validateGroup(value: unknown, parameter = 'groupName'): string {
  const text = requireString(value, parameter);
  requireLength(text, parameter, limits.groupNameCharsMax);
  requirePattern(text, parameter, /^[a-zA-Z0-9\-_:.]+$/, '0-9a-zA-Z-_:.');
  return text;
}

/** validateServiceName checks a bare service name: 1..512 chars, no leading '@', no '@@', no whitespace, CJK or control chars. */
export function validateServiceName(value: unknown, parameter = 'serviceName'): string {
  const text = requireString(value, parameter);
  requireLength(text, parameter, limits.serviceNameCharsMax);
  if (text.startsWith('@') || text.includes('@@')) {
    invalid(parameter, `Param '${parameter}' must not start with '@' or contain '@@' (the group separator)`);
  }
  if (whitespaceOrCjk.test(text) || controlCharacter.test(text)) {
    invalid(parameter, `Param '${parameter}' must not contain whitespace, control or Chinese characters`);
  }
  return text;
}

/** validateClusterName checks a cluster name: 1..64 chars of [A-Za-z0-9-_] (Nacos 2.x's parameter checker). */
export function validateClusterName(value: unknown, parameter = 'clusterName'): string {
  const text = requireString(value, parameter);
  requireLength(text, parameter, limits.clusterNameCharsMax);
  requirePattern(text, parameter, /^[0-9a-zA-Z\-_]+$/, '0-9a-zA-Z-_');
  return text;
}

// Nacos's IPv4 pattern (leading zeros allowed), applied to values made only of digits and dots.
const ipv4 = /^(25[0-5]|2[0-4]\d|[0-1]?\d?\d)(\.(25[0-5]|2[0-4]\d|[0-1]?\d?\d)){3}$/;

/** validateIp checks an instance address: 1..128 chars, no whitespace, CJK or control chars; digits-and-dots must be IPv4. */
export function validateIp(value: unknown, parameter = 'ip'): string {
  const text = requireString(value, parameter);
  requireLength(text, parameter, limits.ipCharsMax);
  if (whitespaceOrCjk.test(text) || controlCharacter.test(text)) {
    invalid(parameter, `Param '${parameter}' must not contain whitespace, control or Chinese characters`);
  }
  if (/^[\d.]+$/.test(text) && !ipv4.test(text)) invalid(parameter, `Param '${parameter}' is not a valid IPv4 address: ${text}`);
  return text;
}

function requireInteger(value: unknown, parameter: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(parameter, `Param '${parameter}' must be an integer within ${min}..${max} (got ${String(value)})`);
  }
  return value;
}

/** validatePort checks an instance port: an integer within 0..65535 (Nacos's range; see the file comment on 0). */
export function validatePort(value: unknown, parameter = 'port'): number {
  return requireInteger(value, parameter, 0, 65_535);
}

/** validateWeight checks an instance weight: a finite number within [0, 10000] (Nacos's message). */
export function validateWeight(value: unknown, parameter = 'weight'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > WEIGHT_MAX) {
    invalid(parameter, `instance format invalid: The weights range from 0.0 to 10000.0 (got ${String(value)})`);
  }
  return value;
}

/** validateProtectThreshold checks a service's protect threshold: a finite number within [0, 1]. */
export function validateProtectThreshold(value: unknown, parameter = 'protectThreshold'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    invalid(parameter, `Param '${parameter}' must be a number within [0, 1] (got ${String(value)})`);
  }
  return value;
}

/** validateBoolean checks a boolean field of a typed input. */
export function validateBoolean(value: unknown, parameter: string): boolean {
  if (typeof value !== 'boolean') invalid(parameter, `Param '${parameter}' must be a boolean (got ${String(value)})`);
  return value;
}

/** validateRequestId checks a write's request id: 1..128 printable ASCII characters. */
export function validateRequestId(value: unknown, parameter = 'requestId'): string {
  const text = requireString(value, parameter);
  requireLength(text, parameter, limits.requestIdCharsMax);
  requirePattern(text, parameter, /^[\x21-\x7e]+$/, 'printable ASCII without spaces');
  return text;
}

function sortedFrozen(entries: Iterable<readonly [string, string]>): Metadata {
  const list = [...entries];
  // Most maps arrive sorted already (stored and replicated metadata is written sorted): sort only when they are not.
  let sorted = true;
  for (let i = 1; i < list.length && sorted; i++) sorted = (list[i - 1] as readonly [string, string])[0] < (list[i] as readonly [string, string])[0];
  if (!sorted) list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return Object.freeze(Object.fromEntries(list));
}

/**
 * validateMetadata checks a typed metadata map (string keys and values, no empty key) and its size: summed key and
 * value lengths at most limits.metadataCharsMax (Nacos's 1024). Returns a frozen copy with sorted keys.
 */
export function validateMetadata(value: unknown, parameter = 'metadata'): Metadata {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(parameter, `Param '${parameter}' must be a string map`);
  const entries = Object.entries(value);
  let chars = 0;
  for (const [key, item] of entries) {
    if (key === '') invalid(parameter, `Param '${parameter}' has an empty key`);
    if (typeof item !== 'string') invalid(parameter, `Param '${parameter}' value of '${key}' must be a string`);
    requireWellFormed(key, parameter);
    requireWellFormed(item, parameter);
    chars += key.length + item.length;
  }
  if (chars > limits.metadataCharsMax) {
    fail('CAIRN_METADATA_TOO_LARGE', parameter,
      `Param '${parameter}' is too large: keys and values total ${chars} characters, more than ${limits.metadataCharsMax}`);
  }
  return sortedFrozen(entries as Array<[string, string]>);
}

function metadataFormatIncorrect(parameter: string, text: string): never {
  return invalid(parameter, `metadata format incorrect:${text}`);
}

function parseMetadataJson(text: string, parameter: string): Record<string, string> | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return metadataFormatIncorrect(parameter, text);
  const entries: Array<[string, string]> = [];
  let numbers: Map<string, string> | null = null;
  for (const [key, item] of Object.entries(parsed)) {
    // Jackson reads scalars into a Map<String, String> as their text and null as a null value, which a Java client
    // reads back as null, as for a key that is not there; so a null value leaves its key out. Objects and arrays
    // are refused.
    if (item === null) continue;
    if (typeof item === 'string' || typeof item === 'boolean') entries.push([key, String(item)]);
    else if (typeof item === 'number') entries.push([key, (numbers ??= flatNumberTexts(text)).get(key) ?? String(item)]);
    else metadataFormatIncorrect(parameter, text);
  }
  return Object.fromEntries(entries);
}

/**
 * flatNumberTexts maps each key of a flat JSON object (valid JSON, already parsed) whose value is a number to the
 * number's text as written, the last one for a repeated key, as JSON.parse keeps the last: Jackson keeps a number's
 * text in a string map ("1.0", "1e2", "9007199254740993"), where String(JSON.parse(...)) would give "1", "100" and
 * "9007199254740992".
 */
function flatNumberTexts(text: string): Map<string, string> {
  const texts = new Map<string, string>();
  const stringToken = /"(?:[^"\\]|\\.)*"/y;
  const numberToken = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const skip = (at: number): number => {
    while (at < text.length && /[\s{},:]/.test(text[at] ?? '')) at++;
    return at;
  };
  // Bounded by the text: every turn consumes a key and its value.
  for (let at = skip(0); at < text.length;) {
    stringToken.lastIndex = at;
    const key = stringToken.exec(text);
    if (key === null) break;
    at = skip(stringToken.lastIndex);
    numberToken.lastIndex = at;
    stringToken.lastIndex = at;
    const number = numberToken.exec(text);
    const string = number === null ? stringToken.exec(text) : null;
    if (number !== null) texts.set(JSON.parse(key[0]) as string, number[0]);
    const end = number !== null ? numberToken.lastIndex : string !== null ? stringToken.lastIndex : text.indexOf(',', at) < 0 ? text.length : text.indexOf(',', at);
    at = skip(end);
  }
  return texts;
}

/**
 * parseMetadata parses a metadata parameter as Nacos does: blank -> {}, JSON `{"k":"v"}`, else `k1=v1,k2=v2`;
 * anything else -> "metadata format incorrect". Then validateMetadata applies (size limit, empty keys).
 */
export function parseMetadata(text: string, parameter = 'metadata'): Metadata {
  if (text.trim() === '') return Object.freeze({});
  const json = parseMetadataJson(text, parameter);
  if (json !== null) return validateMetadata(json, parameter);
  const entries: Array<[string, string]> = [];
  const pairs = text.split(',');
  // Java's split drops trailing empty strings, so "a=1," is one pair; an empty pair elsewhere is malformed.
  while (pairs.length > 0 && pairs[pairs.length - 1] === '') pairs.pop();
  for (const pair of pairs) {
    const parts = pair.split('=');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') metadataFormatIncorrect(parameter, text);
    entries.push([parts[0] ?? '', parts[1] ?? '']);
  }
  return validateMetadata(Object.fromEntries(entries), parameter);
}

function parseJsonObject(text: string, parameter: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid(parameter, `Param '${parameter}' is not valid JSON: ${text}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) invalid(parameter, `Param '${parameter}' must be a JSON object`);
  return parsed as Record<string, unknown>;
}

// Nacos's label selector grammar: `CONSUMER.label.<k> = PROVIDER.label.<k>` terms joined by '&' (whitespace ignored).
const labelTerm = /^CONSUMER\.label\.([^=&]+)=PROVIDER\.label\.([^=&]+)$/;

/** validateSelector checks a typed selector: none, or label with an expression in Nacos's grammar (or empty). */
export function validateSelector(value: unknown, parameter = 'selector'): Selector {
  if (typeof value !== 'object' || value === null) invalid(parameter, `Param '${parameter}' must be an object`);
  const type: unknown = Reflect.get(value, 'type');
  if (type === 'none') return Object.freeze({ type: 'none' });
  if (type !== 'label') invalid(parameter, `Param '${parameter}' type must be 'none' or 'label' (got ${String(type)})`);
  const expression: unknown = Reflect.get(value, 'expression') ?? '';
  if (typeof expression !== 'string') invalid(parameter, `Param '${parameter}' expression must be a string`);
  requireWellFormed(expression, parameter);
  if (expression.length > limits.selectorExpressionCharsMax) {
    invalid(parameter, `Param '${parameter}' expression is longer than ${limits.selectorExpressionCharsMax} characters`);
  }
  const compact = expression.replace(/\s+/g, '');
  if (compact !== '') {
    for (const term of compact.split('&')) {
      const match = labelTerm.exec(term);
      if (match === null || match[1] !== match[2]) {
        invalid(parameter, `Param '${parameter}' expression must be 'CONSUMER.label.k = PROVIDER.label.k' terms joined by '&' (bad term: ${term})`);
      }
    }
  }
  return Object.freeze({ type: 'label', expression });
}

/** parseSelector parses Nacos's selector JSON (`{"type":"none"}`, `{"type":"label","expression":"..."}`); blank -> none. */
export function parseSelector(text: string, parameter = 'selector'): Selector {
  if (text.trim() === '') return Object.freeze({ type: 'none' });
  const object = parseJsonObject(text, parameter);
  const type = object['type'];
  return validateSelector({ ...object, type: typeof type === 'string' ? type.toLowerCase() : type }, parameter);
}

const httpToken = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function validateHeaders(value: unknown, parameter: string): Metadata {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(parameter, `Param '${parameter}' headers must be a string map`);
  const entries: Array<[string, string]> = [];
  for (const [name, item] of Object.entries(value)) {
    if (!httpToken.test(name)) invalid(parameter, `Param '${parameter}' header name '${name}' is not an HTTP token`);
    if (typeof item !== 'string' || /[\r\n\u0000]/.test(item)) invalid(parameter, `Param '${parameter}' header '${name}' must be a string without CR, LF or NUL`);
    entries.push([name, item]);
  }
  return sortedFrozen(entries);
}

/** parseHeaders parses Nacos's HTTP checker headers `k:v|k2:v2` (split at the first ':'); blank -> {}. */
export function parseHeaders(text: string, parameter = 'healthChecker'): Metadata {
  const entries: Array<[string, string]> = [];
  for (const pair of text.split('|')) {
    if (pair.trim() === '') continue;
    const colon = pair.indexOf(':');
    if (colon <= 0) invalid(parameter, `Param '${parameter}' headers must be 'name:value' pairs joined by '|' (bad pair: ${pair})`);
    entries.push([pair.slice(0, colon).trim(), pair.slice(colon + 1).trim()]);
  }
  return validateHeaders(Object.fromEntries(entries), parameter);
}

// Headers an HTTP probe cannot send. The probers' HTTP client (undici 7) refuses a request carrying Transfer-Encoding,
// Keep-Alive, Upgrade or Expect, a Content-Length that is no valid length, a Connection value that is no list of
// tokens, a second Host, or a value with a character outside tab, space, visible ASCII and Latin-1: every probe of
// such a checker failed and its instances went unhealthy (session 32's audit). A probe is a GET without a body on a
// connection the prober manages, so Cairn refuses the framing and connection headers whatever their value, and allows
// Connection only as `keep-alive` or `close` (other tokens are not sent). One Host is allowed (virtual hosts).
const probeFramingHeaders: ReadonlySet<string> = new Set(['transfer-encoding', 'content-length', 'expect', 'keep-alive', 'upgrade']);
const probeHeaderValueRefused = /[^\t\x20-\x7e\x80-\xff]/;

/** ProbeHeaderRule names why a probe cannot send a header; a bounded set (a metric label). */
export type ProbeHeaderRule = 'framing' | 'connection' | 'host' | 'value';

/** ProbeHeaderRefusal is one header of an HTTP checker that a probe cannot send: its name as given, the rule and why. */
export interface ProbeHeaderRefusal {
  readonly name: string;
  readonly rule: ProbeHeaderRule;
  readonly reason: string;
}

/**
 * refusedProbeHeaders lists the headers of an HTTP checker that a probe cannot send (see probeFramingHeaders), in the
 * map's order; [] when every header can be sent. Names compare case-insensitively.
 */
export function refusedProbeHeaders(headers: Metadata): ProbeHeaderRefusal[] {
  const refused: ProbeHeaderRefusal[] = [];
  let hosts = 0;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (probeFramingHeaders.has(lower)) {
      refused.push({ name, rule: 'framing', reason: 'a probe is a GET without a body on a connection the prober manages' });
    } else if (lower === 'connection' && !/^\s*(keep-alive|close)\s*$/i.test(value)) {
      refused.push({ name, rule: 'connection', reason: "only 'keep-alive' or 'close' is allowed" });
    } else if (lower === 'host' && ++hosts > 1) {
      refused.push({ name, rule: 'host', reason: 'a probe sends one Host header' });
    } else if (probeHeaderValueRefused.test(value)) {
      refused.push({ name, rule: 'value', reason: 'its value may hold only tab, space, visible ASCII and Latin-1 characters' });
    }
  }
  return refused;
}

/**
 * validateProbeHeaders refuses an HTTP checker with a header a probe cannot send (refusedProbeHeaders), naming it;
 * other checkers pass. The API calls it for new checkers; validateHealthChecker does not, because the Raft command
 * decoder and the stored-record reader use that one and must keep accepting what older members wrote (the prober
 * drops such headers of a stored checker instead).
 */
export function validateProbeHeaders(checker: HealthChecker, parameter = 'healthChecker'): HealthChecker {
  if (checker.type !== 'HTTP') return checker;
  const first = refusedProbeHeaders(checker.headers)[0];
  if (first !== undefined) invalid(parameter, `Param '${parameter}' header '${first.name}' cannot be sent by a probe: ${first.reason}`);
  return checker;
}

function checkerChars(checker: HealthChecker): number {
  switch (checker.type) {
    case 'NONE':
    case 'TCP':
      return 0;
    case 'HTTP':
      return checker.path.length + Object.entries(checker.headers).reduce((sum, [k, v]) => sum + k.length + v.length, 0);
    case 'MYSQL':
      return checker.user.length + checker.password.length + checker.sql.length;
    default:
      return assertNever(checker);
  }
}

/** checkerStrings lists a checker's free-text fields (HTTP path and headers, MySQL user, password and SQL). */
function checkerStrings(checker: HealthChecker): string[] {
  switch (checker.type) {
    case 'NONE':
    case 'TCP':
      return [];
    case 'HTTP':
      return [checker.path, ...Object.entries(checker.headers).flat()];
    case 'MYSQL':
      return [checker.user, checker.password, checker.sql];
    default:
      return assertNever(checker);
  }
}

/** intervalOf reads a checker's optional fixed interval (FixedInterval): absent, or an integer in the probe bounds. */
function intervalOf(value: object, parameter: string): FixedInterval {
  const raw: unknown = Reflect.get(value, 'intervalMs');
  if (raw === undefined || raw === null) return {};
  return { intervalMs: requireInteger(raw, `${parameter}.intervalMs`, limits.probeIntervalMsMin, limits.probeIntervalMsMax) };
}

function validateHttpChecker(value: object, parameter: string): HealthChecker {
  const path: unknown = Reflect.get(value, 'path') ?? '';
  if (typeof path !== 'string' || (path !== '' && !path.startsWith('/')) || /[\s\u0000-\u001f]/.test(path)) {
    invalid(parameter, `Param '${parameter}' path must be empty or an absolute path without whitespace (got ${String(path)})`);
  }
  const code: unknown = Reflect.get(value, 'expectedResponseCode') ?? DEFAULT_HTTP_EXPECTED_RESPONSE_CODE;
  const expectedResponseCode = requireInteger(code, `${parameter}.expectedResponseCode`, 100, 599);
  const headers = validateHeaders(Reflect.get(value, 'headers') ?? {}, parameter);
  return Object.freeze({ type: 'HTTP', path, headers, expectedResponseCode, ...intervalOf(value, parameter) });
}

function validateMysqlChecker(value: object, parameter: string): HealthChecker {
  const user: unknown = Reflect.get(value, 'user');
  const password: unknown = Reflect.get(value, 'password') ?? '';
  const sql: unknown = Reflect.get(value, 'sql') ?? MYSQL_READ_ONLY_SQL;
  if (typeof user !== 'string' || user === '' || controlCharacter.test(user)) invalid(parameter, `Param '${parameter}' user is required for a MYSQL checker`);
  if (typeof password !== 'string') invalid(parameter, `Param '${parameter}' password must be a string`);
  if (typeof sql !== 'string' || sql.trim() === '') invalid(parameter, `Param '${parameter}' sql must be a non-empty string`);
  return Object.freeze({ type: 'MYSQL', user, password, sql, ...intervalOf(value, parameter) });
}

/** validateHealthChecker checks a typed checker (NONE, TCP, HTTP, MYSQL) and its size; returns a frozen normalised copy. */
export function validateHealthChecker(value: unknown, parameter = 'healthChecker'): HealthChecker {
  if (typeof value !== 'object' || value === null) invalid(parameter, `Param '${parameter}' must be an object`);
  const type: unknown = Reflect.get(value, 'type');
  let checker: HealthChecker;
  if (type === 'NONE') checker = Object.freeze({ type });
  else if (type === 'TCP') checker = Object.freeze({ type, ...intervalOf(value, parameter) });
  else if (type === 'HTTP') checker = validateHttpChecker(value, parameter);
  else if (type === 'MYSQL') checker = validateMysqlChecker(value, parameter);
  else return invalid(parameter, `Param '${parameter}' type must be one of NONE, TCP, HTTP, MYSQL (got ${String(type)})`);
  for (const text of checkerStrings(checker)) requireWellFormed(text, parameter);
  if (checkerChars(checker) > limits.healthCheckerCharsMax) {
    invalid(parameter, `Param '${parameter}' is too large: more than ${limits.healthCheckerCharsMax} characters`);
  }
  return checker;
}

/**
 * parseHealthChecker parses Nacos's checker JSON, polymorphic on "type": `{"type":"TCP"}`, `{"type":"HTTP","path",
 * "headers":"k:v|k2:v2","expectedResponseCode"}`, `{"type":"MYSQL","user","pwd","cmd"}` (also `password`, `sql`).
 * Unknown types are refused (see the file comment). Blank is refused: Nacos requires the parameter.
 */
export function parseHealthChecker(text: string, parameter = 'healthChecker'): HealthChecker {
  if (text.trim() === '') invalid(parameter, `Param '${parameter}' is required.`);
  const object = parseJsonObject(text, parameter);
  const rawType = object['type'];
  const type = typeof rawType === 'string' ? rawType.toUpperCase() : rawType;
  const rawInterval = object['intervalMs'];
  const interval = { intervalMs: typeof rawInterval === 'string' && /^\d+$/.test(rawInterval) ? Number(rawInterval) : rawInterval };
  if (type === 'HTTP') {
    const headers = object['headers'];
    const parsedHeaders = typeof headers === 'string' ? parseHeaders(headers, parameter) : headers;
    const code = object['expectedResponseCode'];
    const expectedResponseCode = typeof code === 'string' && /^\d+$/.test(code) ? Number(code) : code;
    return validateHealthChecker({ type, path: object['path'], headers: parsedHeaders, expectedResponseCode, ...interval }, parameter);
  }
  if (type === 'MYSQL') {
    return validateHealthChecker({ type, user: object['user'], password: object['pwd'] ?? object['password'], sql: object['cmd'] ?? object['sql'], ...interval }, parameter);
  }
  return validateHealthChecker(type === 'NONE' ? { type } : { type, ...interval }, parameter);
}

/** validateCheckPort checks a cluster's check port: 0..65535, and 1..65535 when it is the port probed. */
export function validateCheckPort(value: unknown, useInstancePort4Check: boolean, parameter = 'checkPort'): number {
  return requireInteger(value, parameter, useInstancePort4Check ? 0 : 1, 65_535);
}

/** validateServiceKey checks the three names of a service key and returns a frozen copy. */
export function validateServiceKey(key: ServiceKey): ServiceKey {
  return Object.freeze({
    namespace: validateNamespace(key.namespace),
    group: validateGroup(key.group),
    service: validateServiceName(key.service),
  });
}

/** validateInstanceKey checks a service key, cluster, ip and port and returns a frozen copy. */
export function validateInstanceKey(key: InstanceKey): InstanceKey {
  return Object.freeze({
    ...validateServiceKey(key),
    cluster: validateClusterName(key.cluster),
    ip: validateIp(key.ip),
    port: validatePort(key.port),
  });
}

/** PageRequest is a validated page: pageNo >= 1 and 1 <= pageSize <= limits.servicesPerNamespaceMax (larger sizes are clamped: no page can hold more). */
export interface PageRequest {
  readonly pageNo: number;
  readonly pageSize: number;
}

/** validatePage checks pageNo and pageSize (Nacos: both required, 1-based). */
export function validatePage(pageNo: unknown, pageSize: unknown): PageRequest {
  const page = requireInteger(pageNo, 'pageNo', 1, Number.MAX_SAFE_INTEGER);
  const size = requireInteger(pageSize, 'pageSize', 1, Number.MAX_SAFE_INTEGER);
  return { pageNo: page, pageSize: Math.min(size, limits.servicesPerNamespaceMax) };
}
