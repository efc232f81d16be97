"""The Scrapy project: spiders that fetch feeds and hand raw entries to the pipelines."""
