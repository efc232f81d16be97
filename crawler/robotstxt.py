"""robots.txt for article pages: Scrapy's RobotsTxtMiddleware, with requests that wait for a host's robots.txt
all getting its rules.

In Scrapy 2.19 on the asyncio reactor, requests that arrive while a host's robots.txt is being fetched await one
shared Deferred through ``Deferred.asFuture``, which hands the rules to the first waiter only: the others get None
and go through unchecked. Here a waiter that got None reads the rules the middleware stored for the host.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.robotstxt import RobotParser
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    """Scrapy's robots.txt middleware; every request waiting for a host's robots.txt is checked against it."""

    async def robot_parser(self, request: Request) -> RobotParser | None:
        parser = await super().robot_parser(request)
        if parser is None:
            stored = self._parsers.get(urlparse_cached(request).netloc)
            if not isinstance(stored, Deferred):
                return stored
        return parser
