"""A realistic digest week for the tests: the real corpus feeds of 2026-W08 (21 outlets, 1,100 items) served on
loopback and crawled through the real pipeline, tagged with the shipped topics plus two broader ones
(tests/data/digest/extra_topics.toml), and one configured feed that fails all week."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import CORPUS, FeedServer, Home, need, need_corpus

from talentwatch.config import DEFAULTS_DIR

WEEK = "2026-W08"
DATA = Path(__file__).parent / "data"
FEED_MONTH = "-2026-02"  # the corpus files of February 2026: the week and the four before it
FAILING = ("reuters", "/status/503")  # a source whose only feed answers 503 all week
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def week_feeds() -> list[Path]:
    return sorted(p for p in (need_corpus() / "feeds").glob(f"*{FEED_MONTH}*.xml"))


def crawl_week(tmp: Path, server: FeedServer, extra_config: str = "") -> Home:
    """Serve the week's feeds, configure one source per outlet (named as in the corpus MANIFEST) plus the failing
    one, and crawl once."""
    names = {row[0]: row[1] for row in (line.split("\t") for line in
             (need_corpus() / "feeds" / "MANIFEST.tsv").read_text().splitlines()[1:]) if len(row) > 1}
    sources: dict[str, tuple[str, list[str]]] = {FAILING[0]: ("Reuters", [server.url(FAILING[1])])}
    for p in week_feeds():
        server.put(f"/{p.name}", p.read_bytes())
        sources.setdefault(p.name.split("-")[0], (names.get(p.name, p.name), []))[1].append(server.url(f"/{p.name}"))
    (tmp / "sources.toml").write_text("".join(
        f'[[source]]\nid = "{sid}"\nname = {json.dumps(name)}\nfeeds = {json.dumps(urls)}\n\n'
        for sid, (name, urls) in sorted(sources.items())))
    home = Home(tmp, f"sqlite:///{tmp / 'talentwatch.db'}")
    topics = (DEFAULTS_DIR / "topics.toml").read_text() + "\n" + (DATA / "digest" / "extra_topics.toml").read_text()
    home.write_config(None, topics=topics, extra='sources = "sources.toml"\n' + extra_config)
    shutil.copy(DEFAULTS_DIR / "topics.model.json", home.path)  # the shipped rules' [learned] model, beside them
    result = home.run("crawl")
    assert result.code == 0, result.err
    return home


def chromium() -> str:
    path = shutil.which("chromium") or ""
    need(bool(path), "Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return path


def screenshot(html: Path, png: Path, profile: Path, width: int = 760, height: int = 2400) -> str:
    """Render ``html`` in headless Chromium into ``png``; returns Chromium's log (console messages included)."""
    proc = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
         f"--window-size={width},{height}", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def console_errors(log: str) -> list[str]:
    """Lines of Chromium's log that report a page error (uncaught exceptions, console.error, failed loads)."""
    markers = ("Uncaught", ":CONSOLE", "console", "Failed to load", "ERR_")
    return [line for line in log.splitlines() if any(m in line for m in markers)]


__all__ = ["CORPUS", "WEEK", "chromium", "console_errors", "crawl_week", "screenshot", "week_feeds"]
