/**
 * `meshlens_subset_configured_weight_ratio`: the configured weight of each subset beside which dashboards put the
 * observed traffic share. One weight per subset: a host's default route (the first route without match conditions,
 * `HostRouting.weights` in lib/meshconfig/routes.ts), as `configured_weight` in `GET /api/v1/subsets`; subsets that
 * only match-conditioned routes reach get no series. The mesh config is read once at start (no reload), so `set`
 * runs once; it replaces every series, so a reload calling it again would drop the weights of removed routes.
 */
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { orUnknown, serviceFromHost } from '../../lib/model';
import type { MeshConfig, MeshHost } from '../../lib/meshconfig';
import { LABELS, METRICS } from '../../lib/catalogue';

const L = LABELS;
const WEIGHT = METRICS.subsetConfiguredWeight;

export class ConfiguredWeights {
  private readonly gauge: Gauge;

  constructor(registry: Registry) {
    this.gauge = new Gauge({ name: WEIGHT.name, help: WEIGHT.help, labelNames: WEIGHT.labelNames, registers: [registry] });
  }

  /** Replaces every series with the weights of `config` (reset and set run synchronously: no scrape sees half). */
  set(config: MeshConfig): void {
    this.gauge.reset();
    // A host is indexed under several keys (MeshHost.keys): each once.
    const hosts = new Set<MeshHost>(config.hosts.values());
    for (const h of hosts) {
      const weights = h.routing?.weights;
      if (weights === undefined) continue;
      // The labels the request metrics give the same destination (metrics.ts), so PromQL joins them one to one.
      const s = serviceFromHost(h.host);
      for (const w of weights) {
        this.gauge.set(
          {
            [L.destinationService]: orUnknown(h.host),
            [L.destinationServiceName]: orUnknown(s.service),
            [L.destinationServiceNamespace]: orUnknown(s.namespace),
            [L.destinationSubset]: w.subset,
          },
          w.weight / 100,
        );
      }
    }
  }
}
