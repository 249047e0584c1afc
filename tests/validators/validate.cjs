// Validates custom resources with the generated validators the npm registry's @kubernetes-models
// packages carry (pinned in package.json for Node 20):
//   Application  @kubernetes-models/argo-cd 2.7.2      (ArgoCD 2.14's schema)
//   HTTPRoute    @kubernetes-models/gateway-api 0.5.1  (Gateway API 1.0's schema)
// Usage: node validate.cjs KIND < objects.json. Reads a JSON array of objects on stdin and prints a
// JSON array of results: {"ok": true} or {"ok": false, "error": "..."}. The validators check types
// and required fields, not unknown fields or CEL rules.
"use strict";
const MODELS = {
  Application: () => require("@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application").Application,
  HTTPRoute: () => require("@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute").HTTPRoute,
};
const kind = process.argv[2];
if (!MODELS[kind]) {
  process.stderr.write(`unknown kind ${kind}: one of ${Object.keys(MODELS).join(", ")}\n`);
  process.exit(2);
}
const Model = MODELS[kind]();

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((obj) => {
    try {
      new Model(obj).validate();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
