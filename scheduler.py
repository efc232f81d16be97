"""The daemon (`talentwatch run`): one asyncio reactor, APScheduler jobs, signals, single-instance lock.

Not built yet: until it is, `talentwatch crawl` polls every source once (see README, "Running on a schedule").
"""
