#!/usr/bin/env bash
# `make run`: the local control plane, the CRDs, the operator in the background, the examples
# applied, and `kubectl get fapp`. `make down` stops the operator and the control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${FASTAPI_OPERATOR_CLUSTER_DIR:-$PWD/.cluster}
export FASTAPI_OPERATOR_CLUSTER_DIR=$state

# Some thread of the process still runs (as tests/controlplane/cluster.py's running()): not `kill -0`,
# which counts a zombie, and an orphan stays one where init reaps nothing.
running() {
  local status
  for status in /proc/"$1"/task/*/status; do
    [[ -r $status ]] && ! grep -qE '^State:\s+[ZX]' "$status" 2>/dev/null && return 0
  done
  return 1
}

if [[ ${1:-} == down ]]; then
  if [[ -f "$state/operator.pid" ]]; then
    pid=$(cat "$state/operator.pid")
    kill "$pid" 2>/dev/null || true
    # Gone before the control plane goes, so nothing is left running when this returns.
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    rm -f "$state/operator.pid"
  fi
  .venv/bin/python tests/controlplane/cluster.py down
  exit 0
fi

kubeconfig=$(.venv/bin/python tests/controlplane/cluster.py up)
bin=$(cat "$state/bin")
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

if [[ ! -f "$state/operator.pid" ]] || ! running "$(cat "$state/operator.pid")"; then
  # A free port for /healthz: 8080 is often taken on a laptop.
  port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # The examples' apps name no IngressClass: the operator's ingress_class setting gives them one, as
  # the tests' operator has it.
  KUBECONFIG="$state/operator.kubeconfig" nohup .venv/bin/fastapi-operator run --liveness-port "$port" \
    --ingress-class nginx \
    >"$state/logs/operator.log" 2>&1 &
  echo $! >"$state/operator.pid"
fi

# The IngressClasses a platform team would have set up (the tests' own); no controller serves them here.
kubectl apply --server-side --field-manager fastapi-operator-run -f tests/integration/ingress-classes.yaml >/dev/null
kubectl create namespace examples --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply -n examples -f examples/hello/fastapiapp.yaml -f examples/hello/fastapiapp-full.yaml
# The Certificate stays pending here (no cert-manager controller), so wait for Available, not Ready.
kubectl wait -n examples --for=condition=Available --timeout=60s fapp --all
kubectl get fapp -A
cat <<MSG

The operator is running (log: $state/logs/operator.log).
  export KUBECONFIG=$kubeconfig PATH=$bin:\$PATH
  kubectl get fapp,deploy,svc,ingress,networkpolicy,hpa -n examples
Stop everything with: make down
MSG
