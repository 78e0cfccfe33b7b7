"""Scrapy settings for the crawls of tests/test_hostile_addresses.py: newsarchive's own, with a
resolver that answers from a script instead of the network, so a public-looking name can lead to
a 127.0.0.x server (and be rebound mid-crawl)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from crawler.crawl.settings import *  # noqa: F403

TWISTED_DNS_RESOLVER = "tests.dns_settings.ScriptedResolver"

SCRIPT_ENV = "NEWSARCHIVE_TEST_DNS"
"""JSON ``{name: [address, ...]}``: the n-th lookup of a name gets its n-th address, the last
one from then on."""


@implementer(IResolverSimple)
class ScriptedResolver:
    """Names from the script, IP literals as themselves; any other name does not resolve."""

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.script: dict[str, list[str]] = json.loads(os.environ.get(SCRIPT_ENV, "{}"))
        self.lookups: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> ScriptedResolver:
        return cls(reactor)

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred:  # noqa: N802
        if isIPAddress(name) or isIPv6Address(name):
            return defer.succeed(name)
        answers = self.script.get(name)
        if not answers:
            return defer.fail(DNSLookupError(name))
        answer = answers[min(self.lookups[name], len(answers) - 1)]
        self.lookups[name] += 1
        return defer.succeed(answer)
