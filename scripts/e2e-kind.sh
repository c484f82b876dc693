#!/usr/bin/env bash
# End to end on kind, for machines with Docker: a real ingress-nginx and cert-manager, the
# operator installed from its chart, the example app served over HTTPS, then the shared
# integration suite against the same cluster. `make e2e-kind` runs it.
set -euo pipefail
cd "${0%/*}/.."

# Only bash builtins until the tools are checked, so a machine without them hears which.
# Pinned releases of what a real cluster runs in front of the operator.
INGRESS_NGINX_VERSION=controller-v1.15.1
# shellcheck source=SCRIPTDIR/../tests/controlplane/versions.env
source tests/controlplane/versions.env  # CERT_MANAGER_VERSION, shared with the test control plane
CLUSTER=fastapi-operator-e2e
HOST=hello.127.0.0.1.nip.io

missing=()
for tool in docker kind kubectl helm curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if command -v docker >/dev/null && ! docker info >/dev/null 2>&1; then
  missing+=("a running Docker engine")
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "e2e-kind cannot run here; missing: ${missing[*]}" >&2
  exit 1
fi

work=$(mktemp -d)
teardown() {
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap teardown EXIT

step() { printf '\n==> %s\n' "$*"; }

step "kind cluster"
kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
export KUBECONFIG="$work/kubeconfig"
kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG"

step "ingress-nginx $INGRESS_NGINX_VERSION and cert-manager $CERT_MANAGER_VERSION"
kubectl apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/$INGRESS_NGINX_VERSION/deploy/static/provider/kind/deploy.yaml"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl wait -n ingress-nginx --for=condition=Available deployment/ingress-nginx-controller --timeout=300s
kubectl wait -n cert-manager --for=condition=Available deployment --all --timeout=300s

step "images"
docker build -t fastapi-operator:e2e .
docker build -t fastapi-operator-hello:e2e examples/hello
# A second tag of the same app, for the suite's rollout test.
docker tag fastapi-operator-hello:e2e fastapi-operator-hello:e2e-next
kind load docker-image --name "$CLUSTER" fastapi-operator:e2e fastapi-operator-hello:e2e fastapi-operator-hello:e2e-next

step "operator chart"
helm install fastapi-operator charts/fastapi-operator --namespace fastapi-operator-system --create-namespace \
  --set image.repository=fastapi-operator --set image.tag=e2e --set image.pullPolicy=Never --wait --timeout 180s

step "issuers: a self-signed CA that works offline, and Let's Encrypt staging to show ACME is accepted"
kubectl apply -f - <<YAML
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: e2e-selfsigned}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: e2e-ca, namespace: cert-manager}
spec:
  isCA: true
  commonName: fastapi-operator e2e CA
  secretName: e2e-ca
  issuerRef: {name: e2e-selfsigned, kind: ClusterIssuer}
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata: {name: e2e-ca}
spec: {ca: {secretName: e2e-ca}}
YAML
kubectl wait -n cert-manager --for=condition=Ready certificate/e2e-ca --timeout=120s

step "apps"
kubectl create namespace shop
kubectl apply -n shop -f - <<YAML
apiVersion: fastapi-operator.dev/v1alpha1
kind: FastAPIApp
metadata: {name: hello}
spec:
  image: fastapi-operator-hello:e2e
  replicas: 2
  healthPath: /health
  ingress: {hosts: [$HOST], path: /api}
  tls: {clusterIssuer: e2e-ca}
---
apiVersion: fastapi-operator.dev/v1alpha1
kind: FastAPIApp
metadata: {name: hello-staging}
spec:
  image: fastapi-operator-hello:e2e
  healthPath: /health
  ingress: {hosts: [staging.$HOST]}
  tls: {acme: {email: e2e@example.com, environment: staging}}
YAML
kubectl wait -n shop --for=condition=Ready fapp/hello --timeout=300s
kubectl wait -n shop --for=condition=Reconciled fapp/hello-staging --timeout=120s
kubectl get clusterissuer -l app.kubernetes.io/managed-by=fastapi-operator
kubectl get fapp -n shop

step "HTTPS through ingress-nginx"
kubectl get secret -n cert-manager e2e-ca -o jsonpath='{.data.ca\.crt}' | base64 -d >"$work/ca.crt"
echo_json=$(curl --fail --silent --show-error --resolve "$HOST:443:127.0.0.1" --cacert "$work/ca.crt" "https://$HOST/api/echo")
echo "$echo_json"
grep -q '"scheme":"https"' <<<"$echo_json" || { echo "the app did not see https" >&2; exit 1; }
grep -q '"root_path":"/api"' <<<"$echo_json" || { echo "the app did not get root_path /api" >&2; exit 1; }
location=$(curl --silent --output /dev/null --write-out '%{redirect_url}' --resolve "$HOST:443:127.0.0.1" \
  --cacert "$work/ca.crt" "https://$HOST/api/items")
[[ $location == "https://$HOST/api/items/" ]] || { echo "redirect left https or the prefix: $location" >&2; exit 1; }

step "shared integration suite against this cluster (the in-cluster operator steps aside)"
kubectl scale deployment -n fastapi-operator-system fastapi-operator --replicas=0
FASTAPI_OPERATOR_TEST_KUBECONFIG="$KUBECONFIG" \
  FASTAPI_OPERATOR_TEST_IMAGE=fastapi-operator-hello:e2e FASTAPI_OPERATOR_TEST_IMAGE_NEXT=fastapi-operator-hello:e2e-next \
  .venv/bin/python -m pytest -ra tests/integration

step "e2e-kind passed"
