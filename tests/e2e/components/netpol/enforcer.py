"""A NetworkPolicy enforcer for the one-node e2e cluster, because its CNI (ptp, see
../node-base) enforces none and no enforcer is served by the package registries here
(kube-router, Calico and kube-network-policies are not).

It implements what the operator renders and nothing more: Ingress policies whose peers are
namespaceSelector and/or podSelector with matchLabels, and TCP ports by number or by the name
of a container port of the selected pod (resolved per pod, as the API says). Every two seconds it
rewrites one iptables chain, jumped to from FORWARD, where pod-to-pod traffic passes on this
node: for each pod a policy selects, connections from admitted pods to admitted ports return,
everything else is dropped. Replies and the node's own traffic (kubelet probes) pass.
"""

from __future__ import annotations

import subprocess
import sys
import time

from kubernetes import client, config

CHAIN = "E2E-NETWORK-POLICY"


def matches(selector: dict | None, labels: dict) -> bool:
    if selector is None:
        return True
    if selector.get("matchExpressions"):
        raise ValueError("matchExpressions are not supported by this test enforcer")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def port_number(port: int | str, pod: dict) -> int | None:
    """A named port is the selected pod's container port of that name; a pod without it is not
    reachable through the rule."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    return next((c["containerPort"] for container in pod["spec"].get("containers") or []
                 for c in container.get("ports") or [] if c.get("name") == port
                 and c.get("protocol", "TCP") == "TCP"), None)


def rules(policies: list[dict], pods: list[dict], namespaces: dict[str, dict]) -> list[str]:
    running = [p for p in pods if p["status"].get("podIP") and not p["spec"].get("hostNetwork")]
    admitted: dict[str, set[tuple[str, int]]] = {}  # pod IP -> {(source IP, port)}
    for policy in policies:
        spec = policy["spec"]
        if "Ingress" not in (spec.get("policyTypes") or ["Ingress"]):
            continue
        namespace = policy["metadata"]["namespace"]
        targets = [p for p in running if p["metadata"]["namespace"] == namespace
                   and matches(spec.get("podSelector"), p["metadata"].get("labels") or {})]
        for target in targets:
            allowed = admitted.setdefault(target["status"]["podIP"], set())
            for rule in spec.get("ingress") or []:
                named = [p["port"] for p in rule.get("ports") or [] if p.get("protocol", "TCP") == "TCP"]
                ports = [n for n in (port_number(p, target) for p in named) if n is not None] if named else [0]
                for peer in rule.get("from") or []:
                    for source in running:
                        source_namespace = source["metadata"]["namespace"]
                        if "namespaceSelector" in peer:
                            if not matches(peer["namespaceSelector"], namespaces.get(source_namespace, {})):
                                continue
                        elif source_namespace != namespace:
                            continue
                        if not matches(peer.get("podSelector"), source["metadata"].get("labels") or {}):
                            continue
                        allowed.update((source["status"]["podIP"], port) for port in ports)
    lines = [f"-A {CHAIN} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN"]
    for target_ip, sources in sorted(admitted.items()):
        for source_ip, port in sorted(sources):
            port_match = f" -p tcp --dport {port}" if port else ""
            lines.append(f"-A {CHAIN} -s {source_ip}/32 -d {target_ip}/32{port_match} -j RETURN")
        lines.append(f"-A {CHAIN} -d {target_ip}/32 -j DROP")
    return lines


def install(lines: list[str]) -> None:
    table = "\n".join(["*filter", f":{CHAIN} - [0:0]", *lines, "COMMIT", ""])
    subprocess.run(["iptables-restore", "--noflush"], input=table.encode(), check=True)
    jump = ["FORWARD", "-j", CHAIN]
    if subprocess.run(["iptables", "-C", *jump], capture_output=True).returncode != 0:
        subprocess.run(["iptables", "-I", *jump], check=True)


def main() -> None:
    config.load_incluster_config()
    api = client.ApiClient()
    core, networking = client.CoreV1Api(api), client.NetworkingV1Api(api)
    previous: list[str] | None = None
    while True:
        try:
            policies = api.sanitize_for_serialization(networking.list_network_policy_for_all_namespaces().items)
            pods = api.sanitize_for_serialization(core.list_pod_for_all_namespaces().items)
            namespaces = {n.metadata.name: n.metadata.labels or {} for n in core.list_namespace().items}
            current = rules(policies, pods, namespaces)
            if current != previous:
                install(current)
                print(f"installed {len(current)} rules", flush=True)
                previous = current
        except Exception as error:  # a transient API error must not stop enforcement
            print(f"sync failed: {error}", file=sys.stderr, flush=True)
        time.sleep(2)


if __name__ == "__main__":
    main()
