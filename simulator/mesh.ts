/**
 * The simulated mesh: Istio's Bookinfo sample (https://istio.io/latest/docs/examples/bookinfo/) plus a `sleep`
 * client and a `mysqldb` outside the mesh, configured as examples/bookinfo/*.yaml describes. Every name, address
 * and rate the generator uses lives here, so the YAML and the simulator can be checked against each other.
 */

export const NAMESPACE = 'default';
export const CLUSTER_DOMAIN = 'cluster.local';
/** Bookinfo's services all listen on 9080. */
export const SERVICE_PORT = 9080;

/** A pod that writes telemetry: its identity as Kubernetes, Envoy and Hubble name it. */
export interface Pod {
  /** The Deployment, as meshlens derives it from the pod name (`reviews-v2-7c6f9b8d45-p5rkj` → `reviews-v2`). */
  workload: string;
  namespace: string;
  name: string;
  ip: string;
  node: string;
  /** Kubernetes labels (`app`, `version`, ...). */
  labels: Readonly<Record<string, string>>;
  /** `<canonical service>.<namespace>`: the Zipkin `localEndpoint.serviceName` Istio gives the proxy. */
  traceServiceName: string;
  /** Envoy's node id: `sidecar~IP~POD.NS~NS.svc.cluster.local` (gateways: `router~…`). */
  nodeId: string;
  /** Hubble security identity (any stable number per label set). */
  identity: number;
}

function pod(
  workload: string,
  namespace: string,
  templateHash: string,
  suffix: string,
  ip: string,
  node: string,
  labels: Record<string, string>,
  identity: number,
  role: 'sidecar' | 'router' = 'sidecar',
): Pod {
  const name = `${workload}-${templateHash}-${suffix}`;
  const app = labels.app ?? workload;
  return {
    workload,
    namespace,
    name,
    ip,
    node,
    labels: { ...labels, 'pod-template-hash': templateHash },
    traceServiceName: `${app}.${namespace}`,
    nodeId: `${role}~${ip}~${name}.${namespace}~${namespace}.svc.${CLUSTER_DOMAIN}`,
    identity,
  };
}

// ReplicaSet hashes use Kubernetes' SafeEncodeString alphabet (no vowels, no 0/1/3): meshlens recognizes
// `<deployment>-<hash>-<5 chars>` only with a well-formed hash, as in a real cluster.
export const PODS = {
  gateway: pod('istio-ingressgateway', 'istio-system', '7d9c4b8f6b', 'q2x7z', '10.244.0.12', 'kind-worker', { app: 'istio-ingressgateway', istio: 'ingressgateway' }, 21001, 'router'),
  productpage: pod('productpage-v1', NAMESPACE, '5f8c9d6b7c', 'k4w9p', '10.244.1.14', 'kind-worker', { app: 'productpage', version: 'v1' }, 31001),
  details: pod('details-v1', NAMESPACE, '6c7d8b9f45', 'h7m2x', '10.244.2.21', 'kind-worker2', { app: 'details', version: 'v1' }, 31002),
  reviewsV1: pod('reviews-v1', NAMESPACE, '8b9d6c5f47', 'tq8zl', '10.244.1.22', 'kind-worker', { app: 'reviews', version: 'v1' }, 31003),
  reviewsV2: pod('reviews-v2', NAMESPACE, '7c6f9b8d45', 'p5rkj', '10.244.2.23', 'kind-worker2', { app: 'reviews', version: 'v2' }, 31004),
  reviewsV3: pod('reviews-v3', NAMESPACE, '5d4b8c7f96', 'w2nbx', '10.244.1.24', 'kind-worker', { app: 'reviews', version: 'v3' }, 31005),
  ratings: pod('ratings-v1', NAMESPACE, '6d8f7b9c54', 'x9gvm', '10.244.2.25', 'kind-worker2', { app: 'ratings', version: 'v1' }, 31006),
  sleep: pod('sleep', NAMESPACE, '9b8c7d6f54', 'm6zqv', '10.244.1.30', 'kind-worker', { app: 'sleep' }, 31007),
  /** No sidecar (`sidecar.istio.io/inject: "false"`, as databases often run): it appears only in flow records. */
  mysqldb: pod('mysqldb-v1', NAMESPACE, '5c9b7d8f64', 'j7kt2', '10.244.2.40', 'kind-worker2', { app: 'mysqldb', version: 'v1' }, 31008),
} as const;

/** A Kubernetes Service. */
export interface Service {
  name: string;
  namespace: string;
  /** `<name>.<namespace>.svc.cluster.local`, as Envoy cluster names carry it. */
  host: string;
  port: number;
  clusterIp: string;
}

function service(name: string, clusterIp: string, port = SERVICE_PORT): Service {
  return { name, namespace: NAMESPACE, host: `${name}.${NAMESPACE}.svc.${CLUSTER_DOMAIN}`, port, clusterIp };
}

export const SERVICES = {
  productpage: service('productpage', '10.96.120.14'),
  details: service('details', '10.96.120.21'),
  reviews: service('reviews', '10.96.120.22'),
  ratings: service('ratings', '10.96.120.25'),
  mysqldb: service('mysqldb', '10.96.120.40', 3306),
} as const;

/** How one subset behaves: latency of its own work and how often it fails. */
export interface SubsetProfile {
  pod: Pod;
  subset: string;
  /** Median of the service's own processing time (excluding its downstream calls), ms. */
  medianMs: number;
  /** Log-normal shape of that time; larger = longer tail. */
  sigma: number;
  /** Share of requests the application answers with 500 (flag `-`, details `via_upstream`). */
  appErrorRate: number;
  /** Share of requests the client sidecar cannot deliver (503 `UF,URX`): the server never sees them. */
  connectFailureRate: number;
  /** Response body size range, bytes. */
  responseBytes: readonly [number, number];
}

/** ~0.5 % of requests fail on healthy subsets. */
const BASELINE_APP_ERRORS = 0.004;
const BASELINE_CONNECT_FAILURES = 0.001;

export const PROFILES = {
  productpage: { pod: PODS.productpage, subset: 'v1', medianMs: 9, sigma: 0.45, appErrorRate: BASELINE_APP_ERRORS, connectFailureRate: BASELINE_CONNECT_FAILURES, responseBytes: [4200, 5400] },
  details: { pod: PODS.details, subset: 'v1', medianMs: 2.5, sigma: 0.4, appErrorRate: BASELINE_APP_ERRORS, connectFailureRate: BASELINE_CONNECT_FAILURES, responseBytes: [178, 178] },
  reviewsV1: { pod: PODS.reviewsV1, subset: 'v1', medianMs: 6, sigma: 0.45, appErrorRate: BASELINE_APP_ERRORS, connectFailureRate: BASELINE_CONNECT_FAILURES, responseBytes: [295, 358] },
  reviewsV2: { pod: PODS.reviewsV2, subset: 'v2', medianMs: 8, sigma: 0.5, appErrorRate: BASELINE_APP_ERRORS, connectFailureRate: BASELINE_CONNECT_FAILURES, responseBytes: [379, 442] },
  /** The faulty canary: ~9 % errors (8 % application 500s, 1 % connection failures) and a slower, longer tail. */
  reviewsV3: { pod: PODS.reviewsV3, subset: 'v3', medianMs: 24, sigma: 0.7, appErrorRate: 0.08, connectFailureRate: 0.01, responseBytes: [375, 439] },
  ratings: { pod: PODS.ratings, subset: 'v1', medianMs: 2, sigma: 0.4, appErrorRate: BASELINE_APP_ERRORS, connectFailureRate: BASELINE_CONNECT_FAILURES, responseBytes: [48, 48] },
} as const satisfies Record<string, SubsetProfile>;

/**
 * The reviews VirtualService (examples/bookinfo/virtual-services.yaml): iPhone users go to v2 by a header
 * match, everyone else takes the weighted route. With 1/6 of users on iPhone the overall shares are exactly
 * 70/25/5 in expectation: v1 = 5/6 × 84 % = 70 %, v3 = 5/6 × 6 % = 5 %, v2 = 1/6 + 5/6 × 10 % = 25 %.
 */
export const REVIEWS_ROUTING = {
  headerMatchRoute: 'reviews-iphone',
  weightedRoute: 'reviews-weighted',
  /** `user-agent` regex of the header match. */
  userAgentRegex: '.*iPhone.*',
  /** Share of page loads whose browser is an iPhone. */
  iphoneShare: 1 / 6,
  /** Route weights (percent) of the weighted route, as configured. */
  weights: { v1: 84, v2: 10, v3: 6 },
  /** The overall shares those produce. */
  expectedShares: { v1: 0.7, v2: 0.25, v3: 0.05 },
} as const;

/** VirtualService route names (`%ROUTE_NAME%`) of the single-subset services. */
export const ROUTE_NAMES = {
  gateway: 'productpage-v1',
  productpage: 'productpage-v1',
  details: 'details-v1',
  ratings: 'ratings-v1',
  /** Istio's name for the inbound route of a sidecar. */
  inbound: 'default',
} as const;

/** The AuthorizationPolicy that refuses `sleep` at the ratings sidecar (examples/bookinfo/authorization-policy.yaml). */
export const DENY_SLEEP = { namespace: NAMESPACE, name: 'deny-sleep', rule: 0 } as const;

/** The NetworkPolicy that lets only ratings reach mysqldb (examples/bookinfo/network-policy.yaml). */
export const MYSQLDB_POLICY = { namespace: NAMESPACE, name: 'mysqldb-allow-ratings', port: 3306 } as const;

/** External hosts `sleep` tries to reach; the mesh runs `REGISTRY_ONLY`, so both end in BlackHoleCluster. */
export const EXTERNAL = {
  httpHost: 'httpbin.org',
  httpIp: '203.0.113.10',
  tlsHost: 'api.github.com',
  tlsIp: '203.0.113.20',
} as const;

/** The gateway's public name, as browsers send it in `:authority`. */
export const PUBLIC_HOST = 'bookinfo.example.com';

/** Browsers of the page loads; the iPhone ones are what the reviews header match catches. */
export const IPHONE_USER_AGENTS = [
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1',
] as const;
/** Includes an iPad, whose user agent says `iPad`, not `iPhone`: the header match must not catch it. */
export const OTHER_USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36',
  'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
] as const;
export const CURL_USER_AGENT = 'curl/8.5.0';

/** What a root request is: a page load through the gateway, or one of the `sleep` client's calls. */
export const ROOT_MIX = {
  /** Share of root requests that are sleep's calls; the rest are page loads. */
  sleepShare: 0.04,
  /** How sleep's calls split (weights). */
  sleep: { ratings: 0.5, httpEgress: 0.2, tlsEgress: 0.1, mysql: 0.2 },
} as const;

/** A page load's browser closes the connection before the answer (gateway and productpage log `DC`). */
export const DOWNSTREAM_DISCONNECT_RATE = 0.002;

/** Share of ratings requests that open a new (pooled) connection to mysqldb: one Hubble flow each. */
export const RATINGS_DB_CONNECT_RATE = 0.2;

/** The Istio release whose proxy the Fluent Bit records name (`container_image`). */
export const PROXY_IMAGE = 'docker.io/istio/proxyv2:1.24.2';
