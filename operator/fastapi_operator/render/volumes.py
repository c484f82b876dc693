"""What every pod of an app carries beside its own containers: the sidecars (native ones, first
among the init containers, so they start before the app's steps and containers and stop after
them) and the volumes its containers mount. Volumes no container of a pod mounts stay out of it:
a ReadWriteOnce claim in every pod would pin them all to one node, and an ephemeral volume would
make a claim per pod for nothing."""

from __future__ import annotations

from typing import Any

from ..api import FastAPIApp, ProbeSpec, Sidecar, Volume, VolumeMount
from .pod import container_security_context


def volume_source(volume: Volume) -> dict[str, Any]:
    if volume.empty_dir is not None:
        return {"emptyDir": volume.empty_dir.wire()}
    if volume.config_map is not None:
        return {"configMap": volume.config_map.wire()}
    if volume.secret is not None:
        return {"secret": volume.secret.wire()}
    if volume.persistent_volume_claim is not None:
        return {"persistentVolumeClaim": volume.persistent_volume_claim.wire()}
    assert volume.ephemeral is not None
    claim = volume.ephemeral
    claim_spec: dict[str, Any] = {"accessModes": list(claim.access_modes),
                                  "resources": {"requests": {"storage": claim.storage}}}
    if claim.storage_class_name:
        claim_spec["storageClassName"] = claim.storage_class_name
    return {"ephemeral": {"volumeClaimTemplate": {"spec": claim_spec}}}


def mounts(volume_mounts: list[VolumeMount]) -> dict[str, Any]:
    """A container's volumeMounts, or nothing when it mounts none."""
    return {"volumeMounts": [mount.wire() for mount in volume_mounts]} if volume_mounts else {}


def probe(check: ProbeSpec) -> dict[str, Any]:
    handler: dict[str, Any]
    if check.command is not None:
        handler = {"exec": {"command": list(check.command)}}
    elif check.http_path is not None:
        handler = {"httpGet": {"path": check.http_path, "port": check.http_port}}
    else:
        handler = {"tcpSocket": {"port": check.tcp_port}}
    return {**handler, "periodSeconds": check.period_seconds, "failureThreshold": check.failure_threshold}


def sidecar_container(sidecar: Sidecar) -> dict[str, Any]:
    ports = [{"name": port.name, "containerPort": port.container_port, "protocol": "TCP"} for port in sidecar.ports]
    container: dict[str, Any] = {
        "name": sidecar.name,
        "image": sidecar.image,
        # Native sidecar: runs beside the app for the pod's life, started before it, stopped after it.
        "restartPolicy": "Always",
        "resources": sidecar.resources.wire(),
        "securityContext": container_security_context(min((p.container_port for p in sidecar.ports), default=None)),
        **mounts(sidecar.volume_mounts),
    }
    if sidecar.command:
        container["command"] = list(sidecar.command)
    if ports:
        container["ports"] = ports
    if sidecar.env:
        container["env"] = [variable.wire() for variable in sidecar.env]
    if sidecar.probe is not None:
        # A startup probe on a native sidecar holds the next containers until it passes.
        container["startupProbe"] = probe(sidecar.probe)
        container["readinessProbe"] = probe(sidecar.probe)
    return container


def with_sidecars_and_volumes(app: FastAPIApp, pod_spec: dict[str, Any]) -> dict[str, Any]:
    """`pod_spec` with the app's sidecars before its init containers, and the volumes its
    containers mount, in the order spec.volumes declares them."""
    sidecars = [sidecar_container(sidecar) for sidecar in app.spec.sidecars]
    init_containers = sidecars + pod_spec.get("initContainers", [])
    result = {**pod_spec}
    if init_containers:
        result["initContainers"] = init_containers
    mounted = {mount["name"] for container in init_containers + pod_spec["containers"]
               for mount in container.get("volumeMounts", [])}
    volumes = [{"name": volume.name, **volume_source(volume)} for volume in app.spec.volumes if volume.name in mounted]
    if volumes:
        result["volumes"] = volumes
    return result
