/** Records and settings the lib/store tests on embedded ClickHouse share. */
import { emptyRequest } from '../model';
import type { MeshRequest } from '../model';

/** Retention long enough for any fixture time. */
export const TEST_RETENTION = { rawDays: 3650, rollupDays: 3650 };

/** A client-side request from productpage-v1 to reviews v1 (HTTP, 200, ok), with `over` on top. */
export function reviewsRequest(over: Partial<MeshRequest>): MeshRequest {
  return {
    ...emptyRequest(),
    reporter: 'source',
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    destinationHost: 'reviews.default.svc.cluster.local',
    destinationService: 'reviews',
    destinationNamespace: 'default',
    destinationSubset: 'v1',
    destinationPort: 9080,
    protocol: 'http',
    responseCode: 200,
    outcome: 'ok',
    ...over,
  };
}
