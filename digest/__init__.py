"""The weekly digest: select a period's tagged items, group them into stories, render, send exactly once."""

from __future__ import annotations

import logging

from talentwatch.config import Config

logger = logging.getLogger(__name__)


def send_scheduled(config: Config) -> None:
    """The daemon's weekly job: send the digest of the week that just ended."""
    logger.warning("weekly digest: not built yet, nothing sent")
