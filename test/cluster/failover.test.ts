// Goal: a 3-member cluster of real `cairn server` processes survives the loss of its leader without losing an
// acknowledged write, brings a killed member back up to date, moves leadership on request, and shrugs off
// malformed requests.
//
// Method: three members on 127.0.1.50-52 (this file's block is 127.0.1.50-54). A write through each member must
// be acknowledged. Then, under a concurrent load of unique persistent registrations through every running member,
// the leader is killed with SIGKILL; the two survivors must agree on a new leader within 3 s (measured from the
// kill, printed) and keep acknowledging writes. Every acknowledged registration must then be listed by both
// survivors, nothing never attempted or certainly refused may be listed, and their lists must be equal. The killed
// member restarts on its data directory and must catch up (its local list equals the others'; time printed).
// POST /cairn/v1/cluster/transfer-leader?to=<the restarted member> must make every member follow it. Last, each
// member gets a batch of malformed requests (bad parameters, broken JSON, an oversized body, bad member addresses)
// and then bytes that are not HTTP at all: each request must be answered 4xx with a Cairn-Error-Code header, the
// garbage with 400, and every member must still run (same pid), report healthy and acknowledge a write.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { checkConvergence, Ledger, waitFor, Writer, type Member, startCluster } from '../support/cluster.ts';

/** rawExchange writes `bytes` on a fresh TCP connection and resolves with whatever comes back before it closes. */
function rawExchange(host: string, port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let received = '';
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer from ${host}:${port} within 5 s`)));
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

const hosts = ['127.0.1.50', '127.0.1.51', '127.0.1.52', '127.0.1.53', '127.0.1.54'];

/** failoverMsMax is the bound on electing a new leader after the leader is killed. */
const failoverMsMax = 3000;

test('failover, catch-up and leadership transfer in a 3-member cluster', { timeout: 180_000 }, async (t) => {
  const cluster = await startCluster(t, { file: 'failover', hosts, size: 3 });
  const ledger = new Ledger();
  const initial = await cluster.waitForLeader({ timeoutMs: 15_000 });
  t.diagnostic(`initial leader ${initial.leader.addr} (term ${initial.term}), agreed ${initial.ms} ms after every member was ready`);
  let killed: Member | null = null;

  await cluster.step(t, 'writes through every member are acknowledged and listed everywhere', async () => {
    for (const member of cluster.members) {
      const outcome = await ledger.register(member, 'failover-each');
      assert.equal(outcome.kind, 'ok', `a write through ${member.addr} was not acknowledged: ${outcome.detail}`);
    }
    await checkConvergence(ledger, cluster.members);
  });

  await cluster.step(t, 'kill -9 of the leader under load: a new leader within 3 s, no acknowledged write lost', async (st) => {
    const old = (await cluster.waitForLeader()).leader;
    const writer = new Writer(ledger, { services: ['failover-load-0', 'failover-load-1'], concurrency: 4, targets: () => cluster.running }).start();
    try {
      await waitFor(() => writer.ackCount >= 30, { timeoutMs: 10_000, what: '30 acknowledged writes before the kill' });
      const killedAt = Date.now();
      await old.kill9();
      killed = old;
      const survivors = cluster.running;
      const next = await cluster.waitForLeader({ among: survivors, exclude: old, timeoutMs: 10_000, intervalMs: 20 });
      const failoverMs = Date.now() - killedAt;
      st.diagnostic(`failover: ${next.leader.addr} leads term ${next.term}, agreed by both survivors ${failoverMs} ms after kill -9 of leader ${old.addr}`);
      // How the election went, in each survivor's own words (a split vote shows as two candidate terms).
      const electionSteps = survivors.map((member) => {
        const steps = member.events
          .filter((event) => event.msg === 'raft role changed' && event.time >= killedAt)
          .map((event) => `${String(event.fields['role'])}@t${String(event.fields['term'])} +${event.time - killedAt}ms`);
        return `${member.addr}: ${steps.join(', ')}`;
      });
      st.diagnostic(`election: ${electionSteps.join('; ')}`);
      const acksAtElection = writer.ackCount;
      await waitFor(() => writer.ackCount >= acksAtElection + 30, { timeoutMs: 10_000, what: '30 more writes acknowledged under the new leader' });
      const report = await writer.stop();
      st.diagnostic(`load: ${ledger.summary()}; longest gap between two acknowledgements ${report.longestAckGapMs} ms`);
      const convergence = await checkConvergence(ledger, survivors);
      st.diagnostic(`survivors converged ${convergence.ms} ms after the load stopped; unknown writes: ${convergence.unknownPresent} listed, ${convergence.unknownAbsent} not`);
      assert.ok(failoverMs < failoverMsMax, `the new leader was agreed ${failoverMs} ms after the kill; the bound is ${failoverMsMax} ms (election: ${electionSteps.join('; ')})`);
    } finally {
      await writer.stop();
    }
  });

  await cluster.step(t, 'the killed member restarts on its data and catches up', async (st) => {
    const member = killed;
    assert.ok(member !== null, 'no member was killed by the previous step');
    // More writes while it is down, so it has something to catch up on besides the load's tail.
    const survivors = cluster.running;
    for (let i = 0; i < 20; i++) {
      const target = survivors[i % survivors.length];
      assert.ok(target !== undefined, 'no member is running');
      const outcome = await ledger.register(target, 'failover-while-down');
      assert.equal(outcome.kind, 'ok', `a write through ${target.addr} while ${member.addr} was down: ${outcome.detail}`);
    }
    const restartedAt = Date.now();
    await member.restart();
    const readyMs = Date.now() - restartedAt;
    const convergence = await checkConvergence(ledger, cluster.members, { what: `${member.addr} to catch up after its restart` });
    const catchUpMs = Date.now() - restartedAt;
    st.diagnostic(`catch-up: ${member.addr} was ready ${readyMs} ms after its restart and listed what the others list ${catchUpMs} ms after it (poll ${convergence.ms} ms)`);
    const agreement = await cluster.waitForLeader({ among: cluster.members });
    assert.notEqual(agreement.leader, member, 'the restarted member cannot lead without an election (PreVote/CheckQuorum keep the sitting leader)');
    const self = await member.selfView();
    assert.equal(self.role, 'follower', `${member.addr} reports role ${self.role}`);
  });

  await cluster.step(t, 'transfer-leader moves leadership to the named member', async (st) => {
    const { leader } = await cluster.waitForLeader({ among: cluster.members });
    const target = killed !== null && killed !== leader ? killed : cluster.members.find((member) => member !== leader);
    assert.ok(target !== undefined);
    const follower = cluster.members.find((member) => member !== leader && member !== target);
    assert.ok(follower !== undefined);
    const refused = await follower.request('POST', `/cairn/v1/cluster/transfer-leader?to=${target.addr}`);
    assert.equal(refused.code, 'CAIRN_NOT_LEADER', `a transfer asked of follower ${follower.addr}: ${refused.status} ${refused.text}`);
    const started = Date.now();
    const answer = await leader.request('POST', `/cairn/v1/cluster/transfer-leader?to=${target.addr}`);
    assert.equal(answer.status, 200, `transfer to ${target.addr}: ${answer.status} ${answer.code ?? ''} ${answer.text}`);
    const agreement = await cluster.waitForLeader({ among: cluster.members, timeoutMs: 5000 });
    assert.equal(agreement.leader.addr, target.addr, `leadership went to ${agreement.leader.addr}, not ${target.addr}`);
    st.diagnostic(`transfer: ${leader.addr} -> ${target.addr}, agreed by all ${Date.now() - started} ms after the request (term ${agreement.term})`);
    for (const member of cluster.members) {
      const outcome = await ledger.register(member, 'failover-after-transfer');
      assert.equal(outcome.kind, 'ok', `a write through ${member.addr} after the transfer: ${outcome.detail}`);
    }
    await checkConvergence(ledger, cluster.members);
  });

  await cluster.step(t, 'malformed requests are refused with 4xx and crash no member', async () => {
    const pids = cluster.members.map((member) => member.pid);
    const oversized = `serviceName=big&ip=127.0.2.1&port=1&metadata=${'x'.repeat(300 * 1024)}`;
    const malformed: [string, string, { body?: string; headers?: Record<string, string> }][] = [
      ['POST', '/nacos/v1/ns/instance?serviceName=bad&ip=127.0.2.1&port=notaport&ephemeral=false', {}],
      ['POST', '/nacos/v1/ns/instance?ip=127.0.2.1&port=1&ephemeral=false', {}],
      ['POST', '/nacos/v1/ns/instance', { body: '{"serviceName": ', headers: { 'content-type': 'application/json' } }],
      ['POST', '/nacos/v1/ns/instance', { body: '[1,2,3]', headers: { 'content-type': 'application/json' } }],
      ['POST', '/nacos/v1/ns/instance', { body: oversized, headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
      ['POST', '/nacos/v1/ns/instance?serviceName=bad&ip=127.0.2.1&port=1&weight=NaN&metadata=%7Bnot-json', {}],
      ['GET', `/nacos/v1/ns/instance/list?serviceName=${'s'.repeat(600)}`, {}],
      ['POST', '/cairn/v1/cluster/transfer-leader?to=not-an-address', {}],
      ['POST', '/cairn/v1/cluster/members?addr=%00', {}],
      ['DELETE', '/cairn/v1/cluster/members', {}],
    ];
    for (const member of cluster.members) {
      for (const [method, url, options] of malformed) {
        const answer = await member.request(method, url, options);
        const what = `${method} ${url.slice(0, 100)} on ${member.addr}`;
        assert.ok(answer.status >= 400 && answer.status < 500, `${what}: ${answer.status} ${answer.text.slice(0, 200)}`);
        assert.ok(answer.code !== null && answer.code.startsWith('CAIRN_'), `${what}: no Cairn-Error-Code header (${answer.status} ${answer.text.slice(0, 200)})`);
      }
    }
    for (const member of cluster.members) {
      const reply = await rawExchange(member.host, member.port, 'NOT-HTTP \u0000\u0001 garbage\r\n\r\n');
      assert.match(reply, /^HTTP\/1\.1 400 /, `${member.addr} answered garbage bytes with: ${JSON.stringify(reply.slice(0, 120))}`);
    }
    assert.deepEqual(cluster.members.map((member) => member.pid), pids, 'a member process changed (crashed) during the malformed requests');
    for (const member of cluster.members) {
      const health = await member.request('GET', '/cairn/v1/health');
      assert.equal(health.status, 200, `${member.addr} health: ${health.status} ${health.text}`);
      const outcome = await ledger.register(member, 'failover-after-bad-input');
      assert.equal(outcome.kind, 'ok', `a write through ${member.addr} after the malformed requests: ${outcome.detail}`);
    }
    await checkConvergence(ledger, cluster.members);
  });
});
