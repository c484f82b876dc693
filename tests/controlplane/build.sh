#!/usr/bin/env bash
# Builds the test control plane's binaries from the Go module proxy, once per pinned version set.
# The cache lives outside the repository, so a fresh clone on the same machine builds nothing.
# Prints the output directory on its last line: bin/ (the binaries) and manifests/ (CRDs and
# KWOK stages, copied from the same pinned Go modules).
set -euo pipefail
# Everything runs inside main, which bash reads whole before it starts: editing this file
# during a 20-minute build cannot derail the build.
main() {
  here=$(cd "$(dirname "$0")" && pwd)
  # shellcheck source=SCRIPTDIR/versions.env
  source "$here/versions.env"

  key=$(cat "$here/go.mod" "$here/go.sum" "$here/versions.env" "$here/build.sh" | sha256sum | cut -c1-16)
  cache_root=${FASTAPI_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastapi-operator}
  out="$cache_root/controlplane-$key"
  bin="$out/bin"
  tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl)

  missing=()
  for tool in "${tools[@]}"; do [[ -x "$bin/$tool" ]] || missing+=("$tool"); done
  if [[ ${#missing[@]} -eq 0 && -f "$out/manifests/.complete" ]]; then
    echo "controlplane: cached in $out" >&2
    echo "$out"
    exit 0
  fi

  command -v go >/dev/null || { echo "controlplane: Go is required to build the test control plane (missing: ${missing[*]})" >&2; exit 1; }
  mkdir -p "$bin.partial"
  start=$SECONDS
  log() { echo "controlplane: [$((SECONDS - start))s] $*" >&2; }

  log "building Kubernetes and etcd from $here/go.mod (a cold build takes about 5 minutes on 2 cores with a fast module proxy)"
  (
    cd "$here"
    # Stamp the release into the binaries, as Kubernetes' own build does: clients such as Helm
    # check the server's version, and an unstamped build reports v0.0.0-master.
    k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
    minor=${k8s_version#v1.}; minor=${minor%%.*}
    stamp="k8s.io/component-base/version"
    ldflags="-X $stamp.gitVersion=$k8s_version -X $stamp.gitMajor=1 -X $stamp.gitMinor=$minor -X $stamp.gitTreeState=clean"
    go build -ldflags "$ldflags" -o "$bin.partial/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl
    log "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl built"
    go build -o "$bin.partial/etcd" go.etcd.io/etcd/server/v3
    log "etcd built"
  ) &
  builder=$!
  # Go prints nothing while it compiles; a heartbeat shows the build is alive.
  ticks=0
  while kill -0 "$builder" 2>/dev/null; do
    sleep 1
    if (( ++ticks % 30 == 0 )) && kill -0 "$builder" 2>/dev/null; then
      log "still compiling ($(find "$bin.partial" -type f | wc -l) of ${#tools[@]} done)"
    fi
  done
  wait "$builder"

  # kwok's own go.mod (it needs no replace lines) pins its dependencies, so it is installed
  # apart from the Kubernetes build. cluster.py runs kwok itself; kwokctl is there for people
  # who want kwok's own cluster tooling against the same binaries.
  log "building kwok and kwokctl $KWOK_VERSION"
  GOBIN="$bin.partial" GOFLAGS=-mod=mod go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  log "kwok and kwokctl built"

  rm -rf "$bin" && mv "$bin.partial" "$bin"

  module_dir() { GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'; }
  log "copying CRDs and KWOK stages from cert-manager $CERT_MANAGER_VERSION, Traefik $TRAEFIK_VERSION, Gateway API $GATEWAY_API_VERSION, kwok $KWOK_VERSION"
  rm -rf "$out/manifests" && mkdir -p "$out/manifests/crds"
  cert_manager=$(module_dir "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION")
  traefik=$(module_dir "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")
  kwok=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  gateway_api=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  cp "$cert_manager"/deploy/crds/*.yaml "$out/manifests/crds/"
  cp "$traefik/docs/content/reference/dynamic-configuration/traefik.io_middlewares.yaml" "$out/manifests/crds/"
  # The CRDs only: the channel's ValidatingAdmissionPolicy guards upgrades, not what we test.
  cp "$gateway_api"/config/crd/standard/gateway.networking.k8s.io_{gatewayclasses,gateways,httproutes,listenersets,referencegrants}.yaml "$out/manifests/crds/"
  cat "$kwok/kustomize/stage/node/fast/node-initialize.yaml" <(echo ---) \
      "$kwok/kustomize/stage/node/heartbeat/node-heartbeat.yaml" <(echo ---) \
      "$kwok/kustomize/stage/pod/fast/pod-ready.yaml" <(echo ---) \
      "$kwok/kustomize/stage/pod/fast/pod-complete.yaml" <(echo ---) \
      "$kwok/kustomize/stage/pod/fast/pod-delete.yaml" > "$out/manifests/kwok-stages.yaml"
  log "generating the PodMonitor CRD from the Prometheus Operator's API $PROMETHEUS_OPERATOR_API_VERSION"
  monitoring=$(module_dir "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@$PROMETHEUS_OPERATOR_API_VERSION")
  GOBIN="$out/tools" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
  generated=$(mktemp -d)
  (cd "$monitoring" && GOFLAGS=-mod=mod "$out/tools/controller-gen" crd:crdVersions=v1,allowDangerousTypes=true \
    paths=./v1 "output:crd:dir=$generated")
  cp "$generated/monitoring.coreos.com_podmonitors.yaml" "$out/manifests/crds/"
  rm -rf "$generated" "$out/tools"
  chmod -R u+w "$out/manifests"
  touch "$out/manifests/.complete"
  log "done: $out"
  echo "$out"
}

main "$@"; exit
