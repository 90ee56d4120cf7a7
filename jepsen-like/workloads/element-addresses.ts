// element-addresses: the instance addresses a workload registers, one port per element of one loopback address:
// element n is `ip:(portBase + n)` for n below count, and an address maps back to its element. beats.ts and
// sessions.ts each take their own range (different addresses), so their histories never mix.

/** ElementAddresses maps elements to "ip:port" and back. */
export interface ElementAddresses {
  /** address is element n's "ip:port"; RangeError outside 0..count-1. */
  address(n: number): string;
  /** elementOf is the element at (ip, port), or null for any address outside the range. */
  elementOf(ip: string, port: number): number | null;
}

/** elementAddresses builds the range of `count` elements at `ip` from `portBase` (`what` names it in errors). */
export function elementAddresses(what: string, ip: string, portBase: number, count: number): ElementAddresses {
  if (!(Number.isInteger(portBase) && Number.isInteger(count) && portBase > 0 && count > 0 && portBase + count <= 65_536)) {
    throw new RangeError(`${what} elements: ports ${portBase}..${portBase + count - 1} are not a valid range`);
  }
  return {
    address(n: number): string {
      if (!(Number.isInteger(n) && n >= 0 && n < count)) throw new RangeError(`${what} element ${n} out of range`);
      return `${ip}:${portBase + n}`;
    },
    elementOf(otherIp: string, port: number): number | null {
      if (otherIp !== ip || !Number.isInteger(port) || port < portBase || port >= portBase + count) return null;
      return port - portBase;
    },
  };
}
