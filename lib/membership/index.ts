/**
 * lib/membership: which meshlens processes are running, so the process serving Prometheus targets lists every
 * process's `/metrics`, not only its own.
 */

// Heartbeats: every process says it is alive on the bus; the serving one listens.
export { HEARTBEAT_INTERVAL_MS, isHeartbeat, startMembership } from './heartbeats';
export type { Membership, MembershipOptions, SelfDescription } from './heartbeats';

// The member directory: who was heard from recently, newest start winning per address.
export { EXPIRE_AFTER_INTERVALS, MemberDirectory } from './directory';
export type { Member, MemberDirectoryOptions } from './directory';

// Addresses: this process's instance id and the `host:port` others reach it at.
export { advertiseAddress, hostPort, newInstanceId } from './address';
export type { AdvertiseOptions } from './address';
