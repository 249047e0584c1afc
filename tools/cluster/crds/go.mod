// The CustomResourceDefinitions scripts/cluster.sh installs, read from these projects' own modules at
// pinned versions (as envtest users point at $GOMODCACHE/<module>@<version>/config/crd). Nothing here
// is compiled: `go mod download` fetches each module and checks it against go.sum.
//   sigs.k8s.io/gateway-api                config/crd/standard/*.yaml (standard channel, with CEL rules)
//   github.com/argoproj/argo-workflows/v4  manifests/base/crds/minimal/*.yaml (the Helm chart's default)
//   github.com/argoproj/argo-cd/v3         manifests/crds/*-crd.yaml
//   sigs.k8s.io/kwok                       kustomize/stage/{node,pod}/... (kwok's own Stage objects)
module github.com/thinkube/thinkube-devpi/tools/cluster/crds

go 1.26.0

require (
	github.com/argoproj/argo-cd/v3 v3.5.8
	github.com/argoproj/argo-workflows/v4 v4.0.5
	sigs.k8s.io/gateway-api v1.6.3
	sigs.k8s.io/kwok v0.8.0
)
