"""``ToxicCollection``: a proxy's toxics per direction and its live links.

Port of Toxiproxy's ``toxic_collection.go``.  Every change is applied to the
configuration and then to every live link of that direction, so toxics affect
connections that are already open.  Changes are serialised by one lock per
collection; each change first edits the chain and snapshots the links in one
synchronous step, so a link that starts meanwhile sees either the old chain and
gets the change, or the new chain and is skipped.

Toxic names are unique across both directions of a proxy, as in Toxiproxy.
"""

from __future__ import annotations

import logging

import anyio

from chaos.faultproxy.chunks import Direction
from chaos.faultproxy.errors import TOXIC_ALREADY_EXISTS, TOXIC_NOT_FOUND, Conflict, NotFound
from chaos.faultproxy.link import ToxicLink
from chaos.faultproxy.toxics import Attributes, Toxic, ToxicKind, parse_attributes

log = logging.getLogger(__name__)


class ToxicCollection:
    """The toxics of one proxy, and the links they apply to."""

    def __init__(self, proxy_name: str) -> None:
        self._proxy_name = proxy_name
        self._chains: dict[Direction, list[Toxic]] = {d: [] for d in Direction}
        self._links: set[ToxicLink] = set()
        self._lock = anyio.Lock()

    # -- queries (synchronous snapshots) ---------------------------------------------

    def chain(self, direction: Direction) -> list[Toxic]:
        """The toxics of ``direction`` in chain order (a copy)."""
        return list(self._chains[direction])

    def all(self) -> list[Toxic]:
        """Every toxic, upstream first, each direction in chain order (Go's order)."""
        return [toxic for direction in Direction for toxic in self._chains[direction]]

    def find(self, name: str) -> Toxic | None:
        return next((toxic for toxic in self.all() if toxic.name == name), None)

    def get(self, name: str) -> Toxic:
        """Return the toxic called ``name``; raises ``NotFound``."""
        toxic = self.find(name)
        if toxic is None:
            raise NotFound(TOXIC_NOT_FOUND)
        return toxic

    # -- link registry (called by ToxicLink.run) ------------------------------------

    def register(self, link: ToxicLink) -> None:
        self._links.add(link)

    def unregister(self, link: ToxicLink) -> None:
        self._links.discard(link)

    def _links_of(self, direction: Direction) -> list[ToxicLink]:
        return [link for link in self._links if link.direction is direction]

    # -- changes ------------------------------------------------------------------------

    async def add(
        self,
        name: str,
        kind: ToxicKind,
        direction: Direction,
        toxicity: float,
        raw_attributes: object,
    ) -> Toxic:
        """Create a toxic and apply it to every live link of ``direction``.

        Raises ``Conflict`` if the name is taken (checked before the attributes, as
        in Go) and ``BadRequest`` for invalid attributes.
        """
        async with self._lock:
            if self.find(name) is not None:
                raise Conflict(TOXIC_ALREADY_EXISTS)
            toxic = Toxic(name, kind, direction, toxicity, parse_attributes(kind, raw_attributes))
            self._chains[direction].append(toxic)
            links = self._links_of(direction)
            for link in links:
                await link.add_toxic(toxic)
        log.info(
            "toxic added proxy=%s toxic=%s type=%s stream=%s toxicity=%s attributes=%s links=%d",
            self._proxy_name, name, kind.name, direction.value, toxicity, toxic.attributes,
            len(links),
        )  # fmt: skip
        return toxic

    async def update(self, name: str, raw_attributes: object, toxicity: float | None) -> Toxic:
        """Merge new attributes (and toxicity, if given) into a toxic and restart its stubs.

        Raises ``NotFound`` or ``BadRequest``; on error nothing changes.
        """
        async with self._lock:
            toxic = self.get(name)
            attributes: Attributes = parse_attributes(toxic.kind, raw_attributes, toxic.attributes)
            toxic.attributes = attributes
            if toxicity is not None:
                toxic.toxicity = toxicity
            for link in self._links_of(toxic.direction):
                await link.update_toxic(toxic)
        log.info(
            "toxic updated proxy=%s toxic=%s attributes=%s", self._proxy_name, name, attributes
        )
        return toxic

    async def remove(self, name: str) -> None:
        """Remove a toxic from the configuration and every live link; raises ``NotFound``."""
        async with self._lock:
            toxic = self.get(name)
            await self._remove_locked(toxic)
        log.info("toxic removed proxy=%s toxic=%s", self._proxy_name, name)

    async def reset(self) -> None:
        """Remove every toxic."""
        async with self._lock:
            for toxic in self.all():
                await self._remove_locked(toxic)

    async def _remove_locked(self, toxic: Toxic) -> None:
        self._chains[toxic.direction].remove(toxic)
        for link in self._links_of(toxic.direction):
            await link.remove_toxic(toxic)
