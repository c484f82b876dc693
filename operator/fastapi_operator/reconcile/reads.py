"""Where a reconcile's reads come from: the watch cache for the kinds it watches, the API server
for the rest, and for an absence that is about to be acted on."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ContextManager

from ..cache import Cache
from ..compare import applied_as_sent
from ..kube import Kind, Kube, kind_of, missing_api_error
from ..rewrites import ServerRewrites


class Reads:
    def __init__(self, kube: Kube, cache: Cache | None) -> None:
        """Without a `cache` every read goes to the API server (the CLI's and some tests' way)."""
        self.kube = kube
        self.cache = cache
        # What the server made of the operator's writes (rewrites.py): every read shows it undone.
        self.rewrites = ServerRewrites()

    def get(self, kind: Kind, namespace: str | None, name: str, *, required_api: bool = False,
            confirm_absence: bool = False) -> dict[str, Any] | None:
        """From the cache when it watches the kind. With `confirm_absence`, an absence is asked of
        the API server too (a shared object about to be made; a kind whose CRD may have been
        installed since the cache last looked)."""
        return self.rewrites.shown(kind, self._get(kind, namespace, name, required_api, confirm_absence))

    def _get(self, kind: Kind, namespace: str | None, name: str, required_api: bool,
             confirm_absence: bool) -> dict[str, Any] | None:
        if self.cache is None or not self.cache.watches(kind):
            return self.kube.get(kind, namespace, name, required_api=required_api)
        if required_api and not confirm_absence and self.cache.api_missing(kind):
            self.cache.recheck(kind)
            raise missing_api_error(kind)
        obj = self.cache.get(kind, namespace, name)
        if obj is None and confirm_absence:
            self.cache.recheck(kind)  # a CRD installed since the last look is listed again
            obj = self.kube.get(kind, namespace, name, required_api=required_api)
            self.cache.observe(obj)
        return obj

    def list(self, kind: Kind, namespace: str | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
        if self.cache is None or not self.cache.watches(kind):
            found = self.kube.list(kind, namespace, label_selector)
        else:
            found = self.cache.list(kind, namespace, label_selector)
        if not len(self.rewrites):
            return found
        return [obj for obj in (self.rewrites.shown(kind, obj) for obj in found) if obj is not None]

    def api_missing(self, kind: Kind) -> bool:
        return self.cache is not None and self.cache.api_missing(kind)

    def writing(self, kind: Kind, namespace: str | None, name: str) -> ContextManager[None]:
        """Around a write of a child: its watch event is then known as the write's own (Cache.writing)."""
        return self.cache.writing(kind, namespace, name) if self.cache is not None else nullcontext()

    def written(self, obj: dict[str, Any], sent: dict[str, Any] | None = None) -> dict[str, Any]:
        """A write's answer goes into the cache, so the next reconcile starts from it; given what
        was `sent`, what the server changed of it is noted (rewrites.py)."""
        if self.cache is not None:
            self.cache.observe(obj)
        if sent is not None:
            shown, exact = self.rewrites.note(kind_of(sent), sent, obj)
            if exact:
                applied_as_sent(sent, obj)
            return shown
        return (self.rewrites.shown(kind_of(obj), obj) or obj) if len(self.rewrites) else obj
