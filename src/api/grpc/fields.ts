// fields: reads the fields of a decoded request message with their types checked. protobuf decoding already gives
// each field its declared type, but the handlers do not trust that blindly (a change of loader options, or a
// message built by hand in-process, must fail loudly and as INVALID_ARGUMENT rather than flow on as a wrong type).
//
// Absent fields (the loader runs with `defaults: false`) read as proto3's zero values, except through the
// `optional...` readers, which keep "absent" distinct for `optional` fields and message fields. Errors name the
// field as the .proto spells it (`instance.request_id`), in CAIRN_INVALID_ARGUMENT with details.parameter.

import { CairnError } from '../../errors.ts';
import type { Metadata } from '../../naming/model.ts';

/** Fields is one decoded message, with the dotted path of its field names for error messages ('' at the top). */
export class Fields {
  private readonly values: Readonly<Record<string, unknown>>;

  private constructor(values: Readonly<Record<string, unknown>>, readonly path: string) {
    this.values = values;
  }

  /** of wraps a decoded top-level request; anything that is not a plain object is refused. */
  static of(value: unknown): Fields {
    return Fields.wrap(value, '', 'request');
  }

  private static wrap(value: unknown, path: string, what: string): Fields {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(what, `${what} must be a message`);
    return new Fields(value as Readonly<Record<string, unknown>>, path);
  }

  /** name renders a field's name as the .proto spells it, prefixed with its parents: `instance.request_id`. */
  name(field: string): string {
    const snake = snakeCase(field);
    return this.path === '' ? snake : `${this.path}.${snake}`;
  }

  private raw(field: string): unknown {
    return Object.hasOwn(this.values, field) ? this.values[field] : undefined;
  }

  /** string reads a string field; absent is ''. */
  string(field: string): string {
    const value = this.raw(field) ?? '';
    if (typeof value !== 'string') invalid(this.name(field), `Param '${this.name(field)}' must be a string`);
    return value;
  }

  /** boolean reads a bool field; absent is false. */
  boolean(field: string): boolean {
    return this.optionalBoolean(field) ?? false;
  }

  /** optionalBoolean reads an `optional bool` field; absent is undefined. */
  optionalBoolean(field: string): boolean | undefined {
    const value = this.raw(field);
    if (value !== undefined && typeof value !== 'boolean') invalid(this.name(field), `Param '${this.name(field)}' must be a boolean`);
    return value;
  }

  /** number reads a numeric field (any width); absent is 0. */
  number(field: string): number {
    return this.optionalNumber(field) ?? 0;
  }

  /** optionalNumber reads an `optional` numeric field; absent is undefined. */
  optionalNumber(field: string): number | undefined {
    const value = this.raw(field);
    if (value !== undefined && (typeof value !== 'number' || Number.isNaN(value))) {
      invalid(this.name(field), `Param '${this.name(field)}' must be a number`);
    }
    return value;
  }

  /** stringList reads a `repeated string` field; absent is []. */
  stringList(field: string): string[] {
    const value = this.raw(field) ?? [];
    if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
      invalid(this.name(field), `Param '${this.name(field)}' must be a list of strings`);
    }
    return value;
  }

  /** stringMap reads a `map<string, string>` field; absent is {}. */
  stringMap(field: string): Metadata {
    const value = this.raw(field) ?? {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(this.name(field), `Param '${this.name(field)}' must be a string map`);
    const entries = Object.entries(value);
    if (!entries.every((entry): entry is [string, string] => typeof entry[1] === 'string')) {
      invalid(this.name(field), `Param '${this.name(field)}' values must be strings`);
    }
    return Object.fromEntries(entries);
  }

  /** enumName reads an enum field as one of `names` (the loader gives names; an unknown number stays a number); absent is names[0]. */
  enumName<Name extends string>(field: string, names: readonly [Name, ...Name[]]): Name {
    const value = this.raw(field) ?? names[0];
    const name = names.find((candidate) => candidate === value);
    if (name === undefined) invalid(this.name(field), `Param '${this.name(field)}' must be one of ${names.join(', ')} (got ${String(value)})`);
    return name;
  }

  /** message reads a message field; absent is undefined. */
  message(field: string): Fields | undefined {
    const value = this.raw(field);
    return value === undefined || value === null ? undefined : Fields.wrap(value, this.name(field), this.name(field));
  }

  /** messageList reads a `repeated` message field; absent is []. */
  messageList(field: string): Fields[] {
    const value = this.raw(field) ?? [];
    if (!Array.isArray(value)) invalid(this.name(field), `Param '${this.name(field)}' must be a list of messages`);
    return value.map((item: unknown, index) => Fields.wrap(item, `${this.name(field)}[${index}]`, `${this.name(field)}[${index}]`));
  }

  /** requiredMessage reads a message field that must be present. */
  requiredMessage(field: string): Fields {
    const message = this.message(field);
    if (message === undefined) invalid(this.name(field), `Param '${this.name(field)}' is required.`);
    return message;
  }

  /** oneofCase names the member of a oneof that is set (the loader's virtual field), or undefined when none is. */
  oneofCase(oneof: string): string | undefined {
    const value = this.raw(oneof);
    return typeof value === 'string' && this.raw(value) !== undefined ? value : undefined;
  }
}

// Field names in snake_case, by camelCase name. Every handler names the fields it validates, valid or not, so this
// ran a regular expression per field per request; the names are the handlers' literals, a fixed set.
const snakeNames = new Map<string, string>();

function snakeCase(field: string): string {
  let snake = snakeNames.get(field);
  if (snake === undefined) {
    snake = field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
    snakeNames.set(field, snake);
  }
  return snake;
}

function invalid(parameter: string, message: string): never {
  throw new CairnError('CAIRN_INVALID_ARGUMENT', message, { details: { parameter } });
}
