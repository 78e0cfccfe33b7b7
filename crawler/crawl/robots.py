"""Scrapy's robots.txt middleware, with every request that waits for a host's robots.txt given
its rules.

In Scrapy 2.19 the requests that reach a host while its robots.txt is being fetched all await
one Deferred; the first waiter's callback returns nothing, so every later waiter gets no parser
and is let through, whatever the rules say (a crawl's first burst to a host, a page's requisites
on a CDN). Each waiter here gets a Deferred of its own, fired with the parser and handing it on,
as Scrapy did before its middleware became a coroutine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.http import Request
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy.robotstxt import RobotParser


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        waiter: Deferred[RobotParser | None] = Deferred()

        def hand_on(parser: RobotParser | None) -> RobotParser | None:
            waiter.callback(parser)
            return parser

        pending.addCallback(hand_on)
        return await maybe_deferred_to_future(waiter)
