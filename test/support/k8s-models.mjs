// Validates Kubernetes objects with kubernetes-models, @kubernetes-models/istio and
// @kubernetes-models/prometheus-operator (test/k8s.test.ts). Those packages ship ES modules only, which jest's
// CommonJS runtime on Node 20 cannot load, so the test runs this file with plain node: a JSON array of objects on
// stdin, a JSON array of `{ ok, model, error }` on stdout, one per object, in order.
// Each object is constructed as its model and `.validate()`d, which checks it against the model's OpenAPI schema
// (types, required fields, enums, patterns); an apiVersion/kind without a model is an error, never a pass.

/** apiVersion + kind → the module that exports the model (the packages' `exports` paths). */
function modulePath(apiVersion, kind) {
  if (!/^[A-Za-z0-9]+$/.test(kind ?? '')) return undefined;
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (!/^[a-z0-9]+$/.test(version ?? '')) return undefined;
  if (group === '') return `kubernetes-models/${version}/${kind}`;
  if (group.endsWith('.istio.io')) return `@kubernetes-models/istio/${group}/${version}/${kind}`;
  if (group === 'monitoring.coreos.com') return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  if (/^[a-z0-9.]+$/.test(group)) return `kubernetes-models/${group}/${version}/${kind}`;
  return undefined;
}

async function check(obj) {
  const path = modulePath(String(obj?.apiVersion ?? ''), String(obj?.kind ?? ''));
  if (path === undefined) return { ok: false, model: '', error: `no model for apiVersion ${obj?.apiVersion} kind ${obj?.kind}` };
  let Model;
  try {
    Model = (await import(path))[obj.kind];
  } catch (err) {
    return { ok: false, model: path, error: `no model for apiVersion ${obj.apiVersion} kind ${obj.kind}: ${err.message}` };
  }
  if (typeof Model !== 'function') return { ok: false, model: path, error: `${path} exports no ${obj.kind}` };
  try {
    new Model(obj).validate();
    return { ok: true, model: path };
  } catch (err) {
    return { ok: false, model: path, error: err.message };
  }
}

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const objects = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const results = [];
for (const o of objects) results.push(await check(o));
process.stdout.write(JSON.stringify(results));
