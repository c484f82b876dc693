"""What the kind cluster runs beside the operator: one folder per component.

A folder holds everything about its component: `component.py` (its pin, how its binaries are
built, its images, its namespace and what "ready" means), `manifest.yaml` (what is applied, with
`${VARIABLE}` for its images and values) and whatever its build needs (a go.mod, a script).
Bumping a version is one line in its `component.py`; adding a component is one folder. The rig
reads the list below, builds each (cached by its pin, build inputs and build code), puts its
images in the node image, and applies every manifest at once, waiting for each `ready` list.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.e2e.build import Engine, binary_image, build_once, cache_key

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Context:
    """What a component's values and images may use."""
    state: Path  # this cluster's state directory (certificates made for it live here)
    tools_image: str  # a Debian Python image with iptables and the Kubernetes client


@dataclass(frozen=True)
class Component:
    name: str
    folder: Path  # the component's own folder: manifest.yaml and what its build reads
    version: str  # the one pin: the release this component is built from
    namespace: str
    ready: tuple[str, ...]  # what `kubectl rollout status` waits for in `namespace`
    # Writes the binaries (and any CRDs) into the build's cache folder; given the version.
    build: Callable[[Path, str], None] | None = None
    # Files of the folder the build reads (a go.mod): they key its cache with the version and the
    # build's own code, so editing the manifest or the ready list rebuilds nothing.
    build_inputs: tuple[str, ...] = ()
    # Image variable in manifest.yaml -> the binary it runs (an image of that static binary alone).
    binaries: dict[str, str] = field(default_factory=dict)
    # CRD files or folders of the build, applied before any component starts.
    crds: tuple[str, ...] = ()
    # The manifest's other variables, from the cluster's state (certificates, addresses).
    values: Callable[[Context], dict[str, str]] = lambda context: {}
    # Images not made of one binary: variable -> built tag (given the engine and the context).
    images: Callable[[Engine, Context, Path], dict[str, str]] = lambda engine, context, folder: {}
    # More of the manifest, made from the build (an upstream install file with its images swapped),
    # with `$` escaped for the template: the build's folder -> YAML.
    from_build: Callable[[Path], str] | None = None

    @property
    def manifest(self) -> str:
        """The folder's manifest.yaml."""
        return (self.folder / "manifest.yaml").read_text()

    def whole_manifest(self) -> str:
        """What the rig applies: manifest.yaml, and what the build adds to it."""
        built = self.built() if self.from_build is not None else None
        if self.from_build is None or built is None:
            return self.manifest
        return self.manifest + "\n---\n" + self.from_build(built)

    def built(self) -> Path | None:
        """The build's cache folder, built once per (version, build inputs, build code)."""
        build = self.build
        if build is None:
            return None
        key = cache_key(self.name, self.version, *(self.folder / name for name in self.build_inputs), build)
        return build_once(f"component-{self.name}", key, lambda out: build(out, self.version))

    def image_tags(self, engine: Engine, context: Context) -> dict[str, str]:
        """Every image the manifest names, built when missing."""
        out = self.built()
        tags = {}
        for variable, binary in self.binaries.items():
            assert out is not None, f"{self.name}: binaries need a build"
            tag = f"fastapi-operator-e2e/{binary}:{self.version}-{out.name.rsplit('-', 1)[1]}"
            if not engine.has_image(tag):
                # cert-manager starts its solver pods non-root with only arguments: the image says what runs.
                binary_image(engine, tag, {f"/usr/local/bin/{binary}": out / binary},
                             [f'ENTRYPOINT ["/usr/local/bin/{binary}"]', "USER 65532"])
            tags[variable] = tag
        return {**tags, **self.images(engine, context, self.folder)}

    def crd_paths(self) -> list[Path]:
        out = self.built()
        return [out / crd for crd in self.crds] if out else []


def load() -> list[Component]:
    """Every folder's COMPONENT, in name order (they start at once; none waits for another)."""
    components = []
    for path in sorted(HERE.glob("*/component.py")):
        components.append(importlib.import_module(f"{__name__}.{path.parent.name}.component").COMPONENT)
    return components
