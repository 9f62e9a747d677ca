// Validates Kubernetes manifests against the API schemas of kubernetes-models (and the Prometheus Operator
// models for ServiceMonitor). Usage: node validate.mjs FILE.yaml... (multi-document YAML, e.g. helm template
// output). Prints one line per object, "ok Kind/name" or "invalid Kind/name: reason"; exits 1 when any object is
// invalid or of an unknown kind.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

async function modelClass(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const module = group === ""
    ? `kubernetes-models/${version}/${kind}`
    : group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
      : `kubernetes-models/${group}/${version}/${kind}`;
  try {
    const loaded = await import(module);
    return loaded[kind] ?? loaded.default;
  } catch {
    return undefined;
  }
}

let failures = 0;
let count = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(readFileSync(file, "utf8"))) {
    if (doc == null) continue;
    count++;
    const id = `${doc.kind}/${doc.metadata?.name}`;
    const Model = await modelClass(String(doc.apiVersion), String(doc.kind));
    if (!Model) {
      console.log(`invalid ${id}: unknown apiVersion/kind ${doc.apiVersion} ${doc.kind}`);
      failures++;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`ok ${id}`);
    } catch (e) {
      const details = e.errors ? JSON.stringify(e.errors) : "";
      console.log(`invalid ${id}: ${e.message} ${details}`);
      failures++;
    }
  }
}
console.log(`${count} objects, ${failures} invalid`);
process.exit(failures === 0 && count > 0 ? 0 : 1);
