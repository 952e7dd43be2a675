/**
 * Addresses: this process's instance id and the `host:port` other processes and Prometheus reach it at.
 */
import { randomBytes } from 'node:crypto';
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

/** `<hostname>-<pid>-<random>`: readable in labels, unique per process start. */
export function newInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) || 'host';
  return `${host}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** `host:port`, with brackets around an IPv6 address (`[fd00::1]:8080`), as Prometheus targets are written. */
export function hostPort(host: string, port: number): string {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0']);

export interface AdvertiseOptions {
  /** `MESHLENS_ADVERTISE_ADDRESS`; wins when set. */
  advertiseAddress: string | undefined;
  /** `MESHLENS_LISTEN_HOST`. */
  listenHost: string;
  /** The bound HTTP port (the configured one may be 0). */
  port: number;
  /** `os.networkInterfaces()`; injectable for tests. */
  interfaces?: NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/**
 * The `host:port` other processes and Prometheus reach this process's HTTP port at:
 * 1. `MESHLENS_ADVERTISE_ADDRESS` when set (NAT, port mapping, a Service name: only the operator knows);
 * 2. the listen host when it is one address (`127.0.0.1`, `10.0.0.5`, `meshlens-0.meshlens`), with the bound port;
 * 3. when listening on every address (`0.0.0.0`, `::`, as containers do), the first non-internal IPv4 address of
 *    the network interfaces, then a global IPv6 one, else `127.0.0.1`. An IP, not `os.hostname()`: a container's
 *    hostname is its container id, which the other containers (and Prometheus) cannot resolve unless the
 *    compose service or pod has a matching DNS name; its interface IP is reachable on the shared network.
 */
export function advertiseAddress(o: AdvertiseOptions): string {
  if (o.advertiseAddress !== undefined && o.advertiseAddress !== '') return o.advertiseAddress;
  const host = o.listenHost.replace(/^\[(.*)\]$/, '$1');
  if (!WILDCARD_HOSTS.has(host)) return hostPort(host, o.port);
  const all = Object.values(o.interfaces ?? networkInterfaces()).flatMap((list) => list ?? []);
  const external = all.filter((i) => !i.internal);
  const v4 = external.find((i) => i.family === 'IPv4');
  if (v4 !== undefined) return hostPort(v4.address, o.port);
  // Link-local IPv6 (fe80::/10) needs a zone id to be reachable: not usable as a target.
  const v6 = external.find((i) => i.family === 'IPv6' && !/^fe[89ab]/i.test(i.address));
  if (v6 !== undefined) return hostPort(v6.address, o.port);
  return hostPort('127.0.0.1', o.port);
}
