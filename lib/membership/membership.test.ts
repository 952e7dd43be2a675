import type { NetworkInterfaceInfo } from 'node:os';
import { createMemoryBus, TOPICS } from '../bus';
import type { MemberHeartbeat } from '../bus';
import { MemberDirectory, advertiseAddress, hostPort, isHeartbeat, newInstanceId, startMembership } from './index';

function iface(address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo {
  const base = { address, netmask: '', mac: '00:00:00:00:00:00', internal, cidr: null };
  return family === 'IPv4' ? { ...base, family } : { ...base, family, scopeid: 0 };
}

const hb = (instance: string, sentAtMs: number, extra: Partial<MemberHeartbeat> = {}): MemberHeartbeat => ({
  instance,
  target: 'ingest',
  address: `${instance}:8080`,
  startedAtMs: 1,
  sentAtMs,
  ...extra,
});

describe('advertiseAddress', () => {
  const interfaces = {
    lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
    eth0: [iface('fe80::42:acff:fe12:3', 'IPv6'), iface('172.18.0.3', 'IPv4')],
    eth1: [iface('10.1.2.3', 'IPv4')],
  };

  it('MESHLENS_ADVERTISE_ADDRESS wins', () => {
    expect(advertiseAddress({ advertiseAddress: 'ingest-0.meshlens:9999', listenHost: '0.0.0.0', port: 8080, interfaces })).toBe('ingest-0.meshlens:9999');
  });

  it('a specific listen host is used with the bound port', () => {
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '127.0.0.1', port: 40123, interfaces })).toBe('127.0.0.1:40123');
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: 'meshlens.local', port: 8080, interfaces })).toBe('meshlens.local:8080');
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: 'fd00::5', port: 8080, interfaces })).toBe('[fd00::5]:8080');
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '[fd00::5]', port: 8080, interfaces })).toBe('[fd00::5]:8080');
  });

  it('listening on every address: the first non-internal IPv4, then a global IPv6, else loopback', () => {
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '0.0.0.0', port: 8080, interfaces })).toBe('172.18.0.3:8080');
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '::', port: 8080, interfaces })).toBe('172.18.0.3:8080');
    const v6only = { lo: interfaces.lo, eth0: [iface('fe80::1', 'IPv6'), iface('2001:db8::7', 'IPv6')] };
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '0.0.0.0', port: 8080, interfaces: v6only })).toBe('[2001:db8::7]:8080');
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '0.0.0.0', port: 8080, interfaces: { lo: interfaces.lo } })).toBe('127.0.0.1:8080');
  });

  it('defaults to the real interfaces', () => {
    expect(advertiseAddress({ advertiseAddress: undefined, listenHost: '0.0.0.0', port: 1 })).toMatch(/^(\d+\.){3}\d+:1$|^\[.*\]:1$/);
  });

  it('hostPort and instance ids', () => {
    expect(hostPort('10.0.0.1', 15090)).toBe('10.0.0.1:15090');
    expect(hostPort('fd00:10:244::7', 15090)).toBe('[fd00:10:244::7]:15090');
    const a = newInstanceId();
    expect(a).toMatch(/^[A-Za-z0-9.-]+-\d+-[0-9a-f]{6}$/);
    expect(newInstanceId()).not.toBe(a);
  });
});

describe('MemberDirectory', () => {
  let now = 1_000_000;
  const clock = () => now;
  const self = { instance: 'me', target: 'aggregator', address: '10.0.0.1:8080', startedAtMs: 5 };

  beforeEach(() => {
    now = 1_000_000;
  });

  it('lists itself always, others until 3 intervals without a heartbeat', () => {
    const d = new MemberDirectory({ expireAfterMs: 30_000, now: clock });
    d.setSelf(self);
    d.observe(hb('ingest-a', now));
    d.observe(hb('ingest-b', now));
    expect(d.list().map((m) => [m.instance, m.self])).toEqual([
      ['me', true],
      ['ingest-a', false],
      ['ingest-b', false],
    ]);
    now += 20_000;
    d.observe(hb('ingest-b', now));
    now += 15_000; // a: 35 s unheard, b: 15 s
    expect(d.list().map((m) => m.instance)).toEqual(['me', 'ingest-b']);
    now += 1_000_000;
    expect(d.list().map((m) => m.instance)).toEqual(['me']);
  });

  it('ignores replayed history, its own heartbeats and what is not a heartbeat; a leaving member goes at once', () => {
    const d = new MemberDirectory({ expireAfterMs: 30_000, now: clock });
    d.setSelf(self);
    d.observe(hb('old', now - 31_000)); // e.g. Kafka's fromBeginning replay of a stopped member
    d.observe({ ...hb('me', now), address: '10.9.9.9:1' });
    d.observe({ instance: 'x' });
    d.observe(null);
    d.observe({ ...hb('bad', now), address: 'no-port' });
    d.observe(hb('a', now));
    expect(d.list().map((m) => m.instance)).toEqual(['me', 'a']);
    d.observe(hb('a', now, { leaving: true }));
    expect(d.list().map((m) => m.instance)).toEqual(['me']);
    expect(isHeartbeat(hb('a', 1))).toBe(true);
    expect(isHeartbeat({ ...hb('a', 1), leaving: 'yes' })).toBe(false);
  });

  it('one address is listed once: this process first, else the newest start', () => {
    const d = new MemberDirectory({ expireAfterMs: 30_000, now: clock });
    d.setSelf(self);
    d.observe(hb('old-ingest', now, { address: '10.0.0.2:8080', startedAtMs: 100 }));
    d.observe(hb('new-ingest', now, { address: '10.0.0.2:8080', startedAtMs: 200 }));
    d.observe(hb('impostor', now, { address: self.address, startedAtMs: 999 }));
    expect(d.list().map((m) => m.instance)).toEqual(['me', 'new-ingest']);
  });

  it('tells listeners when the listed set changes, not on every heartbeat', () => {
    const d = new MemberDirectory({ expireAfterMs: 30_000, now: clock });
    const calls: string[][] = [];
    d.onChange(() => calls.push(d.list().map((m) => m.instance)));
    d.setSelf(self);
    d.observe(hb('a', now));
    d.observe(hb('a', now + 1));
    d.sweep();
    now += 31_000;
    d.sweep();
    const off = d.onChange(() => calls.push(['second listener']));
    off();
    d.observe(hb('b', now));
    expect(calls).toEqual([['me'], ['me', 'a'], ['me'], ['me', 'b']]);
  });
});

describe('startMembership over the memory bus', () => {
  it('the serving process hears the others, and unlists one that stops', async () => {
    const bus = createMemoryBus();
    const directory = new MemberDirectory({ expireAfterMs: 3_000 });
    const agg = await startMembership({
      bus,
      self: { instance: 'agg', target: 'aggregator', address: '10.0.0.1:8080', startedAtMs: 1 },
      directory,
      intervalMs: 1_000,
    });
    const ingest1 = await startMembership({ bus, self: { instance: 'i1', target: 'ingest', address: '10.0.0.2:8080', startedAtMs: 2 }, intervalMs: 1_000 });
    const ingest2 = await startMembership({ bus, self: { instance: 'i2', target: 'ingest', address: '10.0.0.3:8080', startedAtMs: 3 }, intervalMs: 1_000 });
    const listed = () => directory.list().map((m) => `${m.target}/${m.instance}/${m.address}`);
    await waitFor(() => listed().length === 3);
    expect(listed()).toEqual(['aggregator/agg/10.0.0.1:8080', 'ingest/i1/10.0.0.2:8080', 'ingest/i2/10.0.0.3:8080']);

    await ingest1.stop();
    await waitFor(() => listed().length === 2);
    expect(listed()).toEqual(['aggregator/agg/10.0.0.1:8080', 'ingest/i2/10.0.0.3:8080']);

    // The stopped member's heartbeats stop; a publisher-only member subscribes nothing, so nothing waits for it.
    await ingest2.stop();
    await agg.stop();
    expect(await bus.drain(1_000)).toBe(true);
    await bus.close();
  });

  it('a member that vanishes without leaving expires; a failing bus does not fail the start', async () => {
    const bus = createMemoryBus();
    const directory = new MemberDirectory({ expireAfterMs: 300 });
    const agg = await startMembership({ bus, self: { instance: 'agg', target: 'all', address: '127.0.0.1:1', startedAtMs: 1 }, directory, intervalMs: 100 });
    await bus.publish(TOPICS.members, [{ key: 'ghost', value: [hb('ghost', Date.now())] }]);
    await waitFor(() => directory.list().length === 2);
    await waitFor(() => directory.list().length === 1, 2_000);
    await agg.stop();
    await bus.close();

    // Closed bus: publish and subscribe reject; the start still succeeds and the process lists itself.
    const warnings: string[] = [];
    const logger = { warn: (_f: object, m: string) => warnings.push(m), info: () => undefined, error: () => undefined, debug: () => undefined };
    const d2 = new MemberDirectory();
    const m = await startMembership({ bus, self: { instance: 'solo', target: 'all', address: '127.0.0.1:2', startedAtMs: 1 }, directory: d2, intervalMs: 50, logger });
    await waitFor(() => warnings.length >= 2);
    expect(d2.list().map((x) => x.instance)).toEqual(['solo']);
    await m.stop();
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
