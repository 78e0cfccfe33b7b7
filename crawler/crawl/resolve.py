"""Name resolution with the reactor's resolver, the one every download connects through (Scrapy's
``TWISTED_DNS_RESOLVER``): the crawl resolves each outlet's own hosts when it opens, so that the
download handler knows which internal addresses the outlet lives on."""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IHostResolution, IResolutionReceiver
from zope.interface import implementer


@implementer(IResolutionReceiver)
class _Addresses:
    def __init__(self) -> None:
        self.found: set[str] = set()
        self.done: Deferred[frozenset[str]] = Deferred()

    def resolutionBegan(self, resolution: IHostResolution) -> None:  # noqa: N802 (Twisted's)
        pass

    def addressResolved(self, address: IAddress) -> None:  # noqa: N802
        self.found.add(address.host)  # type: ignore[attr-defined]

    def resolutionComplete(self) -> None:  # noqa: N802
        self.done.callback(frozenset(self.found))


async def resolve(host: str) -> frozenset[str]:
    """The addresses `host` resolves to now (none when it does not resolve)."""
    from twisted.internet import reactor  # here: importing it installs the default reactor

    receiver = _Addresses()
    reactor.nameResolver.resolveHostName(receiver, host)  # type: ignore[attr-defined]
    return await receiver.done
