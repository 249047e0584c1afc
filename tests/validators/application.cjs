// Validates ArgoCD Applications with the generated validator of @kubernetes-models/argo-cd 2.7.2
// (ArgoCD 2.14's schema; newer releases need Node 22). Reads a JSON array of objects on stdin and
// prints a JSON array of results: {"ok": true} or {"ok": false, "error": "..."}.
// The validator checks types and required fields, not unknown fields.
"use strict";
const { Application } = require("@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((obj) => {
    try {
      new Application(obj).validate();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
