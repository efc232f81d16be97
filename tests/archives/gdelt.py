"""A fake GDELT DOC 2.0 API: ``/api/v2/doc/doc?query=... domainis:<d>&mode=ArtList&format=json&startdatetime=
&enddatetime=&maxrecords=``, with GDELT's habit of answering a bad query with a line of plain text."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from archives import Answer, Archive
from archives.history import HistoryItem


class FakeGdelt(Archive):
    def __init__(self, items: list[HistoryItem]) -> None:
        self.items = sorted((i for i in items if i.published), key=lambda i: i.published)  # type: ignore[arg-type]

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path != "/api/v2/doc/doc":
            return Answer(b"not found", 404, "text/plain")
        domain = re.search(r"domainis:(\S+)", query.get("query", ""))
        if query.get("mode") != "ArtList" or query.get("format") != "json" or not domain:
            return Answer(b"Invalid query: please specify a mode, a format and a domain.", content_type="text/html")
        start, end = _stamp(query.get("startdatetime")), _stamp(query.get("enddatetime"))
        found = [{"url": i.url, "url_mobile": "", "title": i.title, "seendate": _seen(i.published),
                  "socialimage": "", "domain": domain.group(1), "language": "English", "sourcecountry": "United States"}
                 for i in self.items
                 if (urlsplit(i.url).hostname or "").endswith(domain.group(1))
                 and start <= i.published.replace(second=0) <= end]  # type: ignore[union-attr]
        body = json.dumps({"articles": found[: int(query.get("maxrecords", 75))]} if found else {})
        return Answer(body.encode(), content_type="application/json; charset=utf-8")


def _stamp(value: str | None) -> datetime:
    return datetime.strptime(value or "", "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _seen(when: datetime | None) -> str:
    return when.strftime("%Y%m%dT%H%M00Z") if when else ""
