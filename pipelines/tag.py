"""Tag stage: a thin Scrapy adapter over the pure tagging engine (``pipelines.tagging``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawler.items import Article, ArticleText, FeedFetch
from pipelines.tagging import Tagger
from pipelines.tagging.rules import load_tagger

if TYPE_CHECKING:  # Scrapy is not imported at run time: parse workers call tag_article without it
    from scrapy.crawler import Crawler


def body(summary: str | None, text: str | None) -> str:
    """What queries read besides the title: the summary and the extracted text."""
    return "\n".join(p for p in (summary, text) if p)


def tag_article(tagger: Tagger, article: Article) -> None:
    """Set an article's topics (with evidence) and entities from its title, summary and text."""
    result = tagger.tag(article.title, body(article.summary, article.text))
    article.tags, article.entities = result.topics, result.entities


class TagPipeline:
    def __init__(self, crawler: Crawler, tagger: Tagger) -> None:
        self.stats, self.tagger = crawler.stats, tagger

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> TagPipeline:
        from scrapy.exceptions import NotConfigured

        path = crawler.settings.get("TALENTWATCH_TOPICS")
        if not path:
            raise NotConfigured("TALENTWATCH_TOPICS is not set")
        return cls(crawler, load_tagger(path))

    def process_item(self, item: Any) -> Any:
        if isinstance(item, FeedFetch):
            for article in item.articles:
                if not item.tagged:
                    tag_article(self.tagger, article)
                self.stats.inc_value("talentwatch/articles_tagged", bool(article.tags))
        elif isinstance(item, ArticleText) and item.article.text_status == "ok":  # a new text: tag it again
            tag_article(self.tagger, item.article)
            item.tagged = True
        return item
