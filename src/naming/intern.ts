// intern: one copy of the short strings a registry repeats. Every instance of a service carries its namespace, group
// and cluster, and most metadata keys and many values ("zone", "eu-west", "grpc", "1.4.2") are the same across
// instances; decoding gives each its own copy (~24-40 bytes of heap each, several per instance). intern() returns an
// earlier string of the same text when it is still in its slot of a small direct-mapped table, else keeps this one.
//
// Bounded (src/limits.ts): internSlots strings of at most internCharsMax characters; a slot holds the last string that hashed to it,
// so a collision costs a copy, never a wrong answer (slots compare the text itself). Strings are immutable, so which
// copy a caller gets changes nothing but memory.

import { limits } from '../limits.ts';

const { internCharsMax, internSlots } = limits;
const table: Array<string | undefined> = new Array<string | undefined>(internSlots);
// FNV-1a over UTF-16 code units (intern) or bytes (internUtf8): the same for ASCII, which internUtf8 relies on.
const fnvOffset = 0x811c9dc5;
const fnvPrime = 0x01000193;

function slotOf(hash: number): number {
  return (hash >>> 0) & (internSlots - 1);
}

/** intern returns a string equal to `text`: an earlier copy when one is at hand, else `text` (kept for later). */
export function intern(text: string): string {
  const length = text.length;
  if (length === 0 || length > internCharsMax) return text;
  let hash = fnvOffset;
  for (let i = 0; i < length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), fnvPrime);
  const slot = slotOf(hash);
  const known = table[slot];
  if (known === text) return known;
  table[slot] = text;
  return text;
}

/**
 * internUtf8 is intern(decode(bytes [start, end))) without decoding when the text is at hand: for ASCII bytes of at
 * most internCharsMax (one byte per character, so the hash of the bytes is the hash of the text), the slot's string
 * is compared with the bytes and returned when equal; no string is made for a repeat. Anything else is decoded by
 * `decode` (which may throw on bad UTF-8) and interned as usual.
 */
export function internUtf8(bytes: Uint8Array, start: number, end: number, decode: (bytes: Uint8Array, start: number, end: number) => string): string {
  const length = end - start;
  if (length === 0) return '';
  if (length > internCharsMax) return decode(bytes, start, end);
  let hash = fnvOffset;
  for (let i = start; i < end; i++) {
    const byte = bytes[i] as number;
    if (byte >= 0x80) return intern(decode(bytes, start, end));
    hash = Math.imul(hash ^ byte, fnvPrime);
  }
  const slot = slotOf(hash);
  const known = table[slot];
  if (known !== undefined && known.length === length) {
    let same = true;
    for (let i = 0; i < length && same; i++) same = known.charCodeAt(i) === bytes[start + i];
    if (same) return known;
  }
  const text = decode(bytes, start, end);
  table[slot] = text;
  return text;
}
