// Goal: ephemeral expiry holds end to end over HTTP beats (NACOS.md §1.4, §5.3): an instance kept by v1 beats stays
// healthy on every member; once the beats stop it turns unhealthy after `preserved.heart.beat.timeout` and is removed
// after `preserved.ip.delete.timeout`, on every member; a beat revives an unhealthy instance; a beat with the npm
// client's body registers a removed instance again (the npm client never re-registers on its own, §10), and one
// without a body answers code 20404. Beats answer `preserved.heart.beat.interval` as clientBeatInterval.
//
// Method: three members on 127.0.1.140-142 (this file's block is 127.0.1.140-144); timings shortened with preserved.*
// metadata (1 s interval, 3 s unhealthy, 6 s removal) so the test does not wait Nacos's 15/30 s; beats are sent
// through a member that is not responsible for the service, so they are forwarded. Observed times are measured from
// the last acknowledged beat and must fall within the timeout plus the expiry scan period, the sync delay and the
// polling interval (and never before the timeout). Times are printed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, startCluster, waitFor, type Member } from '../support/cluster.ts';
import { beatOnce, describeList, listEphemeral, registerEphemeral } from '../support/ephemeral.ts';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';
import { limits } from '../../src/limits.ts';

const hosts = ['127.0.1.140', '127.0.1.141', '127.0.1.142', '127.0.1.143', '127.0.1.144'];
const metadata = { 'preserved.heart.beat.interval': '1000', 'preserved.heart.beat.timeout': '3000', 'preserved.ip.delete.timeout': '6000' };
/** slackMs: an expiry scan period, a sync delay, a poll interval and scheduling noise on a loaded machine. */
const slackMs = limits.distroExpiryTickMs + limits.distroSyncDelayMs + 100 + 1200;

async function views(members: readonly Member[], service: string): Promise<string[]> {
  return Promise.all(members.map(async (member) => describeList(await listEphemeral(member, service))));
}

/** untilEverywhere polls until every member lists `expected` and returns the time it first did. */
async function untilEverywhere(members: readonly Member[], service: string, expected: string, timeoutMs: number): Promise<number> {
  await waitFor(async () => {
    const seen = await views(members, service);
    return seen.every((view) => view === expected) || (() => { throw new Error(seen.join(' | ')); })();
  }, { timeoutMs, intervalMs: 100, what: `${service} = '${expected}' on every member` });
  return Date.now();
}

test('beats keep an instance; silence makes it unhealthy, then removed, on every member; beats revive and re-register', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'ephemeral-expiry', hosts, size: 3 });
  const service = 'expiry-svc';
  const responsible = responsibleMember(serviceIdOf('public', 'DEFAULT_GROUP', service), [...cluster.memberAddrs].sort());
  const via = cluster.members.find((member) => member.addr !== responsible)!;
  await registerEphemeral(via, service, '10.0.0.1', 8080, metadata);
  await untilEverywhere(cluster.members, service, '10.0.0.1:8080', 10_000);

  let lastBeat = 0;
  await cluster.step(t, 'beats every second keep it healthy well past the delete timeout', async () => {
    const until = Date.now() + 8000;
    while (Date.now() < until) {
      const answer = await beatOnce(via, service, '10.0.0.1', 8080);
      lastBeat = Date.now();
      assert.deepEqual(answer, { clientBeatInterval: 1000, code: 10200, lightBeatEnabled: true });
      assert.deepEqual(await views(cluster.members, service), ['10.0.0.1:8080', '10.0.0.1:8080', '10.0.0.1:8080']);
      await sleep(1000);
    }
  });

  await cluster.step(t, 'silent: unhealthy after 3 s and removed after 6 s, everywhere', async () => {
    const unhealthyAt = await untilEverywhere(cluster.members, service, '10.0.0.1:8080!', 3000 + slackMs + 1000) - lastBeat;
    t.diagnostic(`unhealthy on every member ${unhealthyAt} ms after the last beat (timeout 3000 ms)`);
    assert.ok(unhealthyAt >= 3000 - 100 && unhealthyAt <= 3000 + slackMs, `unhealthy after ${unhealthyAt} ms`);
    // A beat now revives it, and silence starts over.
    assert.equal((await beatOnce(via, service, '10.0.0.1', 8080)).code, 10200);
    lastBeat = Date.now();
    await untilEverywhere(cluster.members, service, '10.0.0.1:8080', 2000);
    const removedAt = await untilEverywhere(cluster.members, service, '', 6000 + slackMs + 1000) - lastBeat;
    t.diagnostic(`removed on every member ${removedAt} ms after the last beat (delete timeout 6000 ms)`);
    assert.ok(removedAt >= 6000 - 100 && removedAt <= 6000 + slackMs, `removed after ${removedAt} ms`);
  });

  await cluster.step(t, 'a beat without a body answers 20404; with the npm client\'s body it registers the instance again', async () => {
    assert.deepEqual(await beatOnce(via, service, '10.0.0.1', 8080), { clientBeatInterval: 5000, code: 20404 });
    const answer = await beatOnce(via, service, '10.0.0.1', 8080, { weight: 1, metadata, scheduled: true });
    assert.deepEqual(answer, { clientBeatInterval: 1000, code: 10200, lightBeatEnabled: true });
    await untilEverywhere(cluster.members, service, '10.0.0.1:8080', 5000);
  });
});
