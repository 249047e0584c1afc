// Validates Gateway API HTTPRoutes with the generated validator of @kubernetes-models/gateway-api
// 0.5.1 (Gateway API 1.0's schema; newer releases need Node 22). Reads a JSON array of objects on
// stdin and prints a JSON array of results: {"ok": true} or {"ok": false, "error": "..."}.
// The validator checks types and required fields, not unknown fields or CEL rules.
"use strict";
const { HTTPRoute } = require("@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((obj) => {
    try {
      new HTTPRoute(obj).validate();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
