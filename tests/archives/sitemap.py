"""A fake outlet with sitemaps: robots.txt -> sitemap index -> a news sitemap (titles, publication dates) and
monthly plain sitemaps (lastmod only, one of them gzipped), and the article pages the plain ones point to."""

from __future__ import annotations

import gzip
from collections import defaultdict
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

from archives import Answer, Archive
from archives.history import HistoryItem

NEWS_MONTH = "2025-02"  # items of this month are in the news sitemap, the others in monthly plain sitemaps


class FakeOutlet(Archive):
    def __init__(self, items: list[HistoryItem]) -> None:
        self.items = [i for i in items if i.published]
        self.by_path = {self.path(i): i for i in self.items}

    @staticmethod
    def path(item: HistoryItem) -> str:
        return "/a" + urlsplit(item.url).path.rstrip("/")

    def url(self, item: HistoryItem) -> str:
        return self.base + self.path(item)

    def months(self) -> dict[str, list[HistoryItem]]:
        months: dict[str, list[HistoryItem]] = defaultdict(list)
        for item in self.items:
            months[item.published.strftime("%Y-%m")].append(item)  # type: ignore[union-attr]
        return months

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path == "/robots.txt":
            body = (f"User-agent: *\nDisallow: /wp-admin/\n\nSitemap: {self.base}/sitemap_index.xml\n"
                    "Sitemap: http://elsewhere.example/sitemap.xml\n")
            return Answer(body.encode(), content_type="text/plain")
        if path == "/sitemap_index.xml":
            return Answer(self.index())
        if path == "/news-sitemap.xml":
            return Answer(self.urlset(self.months()[NEWS_MONTH], news=True))
        if path == "/sitemap-2024-12.xml":  # old and unchanged since: must not be read
            return Answer(self.urlset([]))
        if path.startswith("/sitemap-") and path.endswith(".xml.gz"):
            month = path.removeprefix("/sitemap-").removesuffix(".xml.gz")
            return Answer(gzip.compress(self.urlset(self.months().get(month, []))), content_type="application/gzip")
        if path.startswith("/sitemap-") and path.endswith(".xml"):
            month = path.removeprefix("/sitemap-").removesuffix(".xml")
            return Answer(self.urlset(self.months().get(month, [])))
        if (item := self.by_path.get(path)) is not None:
            return Answer(self.page(item), content_type="text/html; charset=utf-8")
        return Answer(b"not found", 404, "text/plain")

    def index(self) -> bytes:
        children = [("/sitemap-2024-12.xml", "2024-12-31T10:00:00+00:00")]
        for month, items in sorted(self.months().items()):
            last = max(i.published for i in items).isoformat()  # type: ignore[type-var,union-attr]
            name = "/news-sitemap.xml" if month == NEWS_MONTH else (
                f"/sitemap-{month}.xml.gz" if month == "2025-01" else f"/sitemap-{month}.xml")
            children.append((name, last))
        body = "".join(f"<sitemap><loc>{self.base}{p}</loc><lastmod>{m}</lastmod></sitemap>" for p, m in children)
        return (f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
                f'sitemap/0.9">{body}</sitemapindex>').encode()

    def urlset(self, items: list[HistoryItem], news: bool = False) -> bytes:
        def entry(i: HistoryItem) -> str:
            when = _w3c(i.published)  # type: ignore[arg-type]
            if not news:
                return f"<url><loc>{self.url(i)}</loc><lastmod>{when}</lastmod></url>"
            return (f"<url><loc>{self.url(i)}</loc><image:image><image:loc>{self.base}/img.jpg</image:loc>"
                    f"<image:title>a picture</image:title></image:image><news:news><news:publication>"
                    f"<news:name>Ars Technica</news:name><news:language>en</news:language></news:publication>"
                    f"<news:publication_date>{when}</news:publication_date>"
                    f"<news:title>{escape(i.title)}</news:title></news:news></url>")

        return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
                ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
                ' xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
                + "".join(entry(i) for i in items) + "</urlset>").encode()

    def page(self, item: HistoryItem) -> bytes:
        return (f'<!doctype html><html><head><title>{escape(item.title)} - Ars Technica</title>'
                f'<meta property="og:title" content="{escape(item.title)}">'
                f'<meta name="description" content="What {escape(item.title)} is about."></head>'
                f"<body><article><h1>{escape(item.title)}</h1></article></body></html>").encode()


def _w3c(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
