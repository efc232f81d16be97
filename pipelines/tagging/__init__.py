"""Pure tagging engine: topic queries and entity aliases matched against title and body.

tagger = Tagger(topics, entities)        # compiles once; RuleError on a bad topic
result = tagger.tag(title, body)         # TagResult(topics={id: [snippets]}, entities=[ids])
tagger.explain(topic_id, title, body)    # which parts of the query matched (nearest miss)
"""

from .matcher import Clause, Entity, Explanation, RuleError, Tagger, TagResult, Topic
from .query import Node, QueryError, parse, word_tokens

__all__ = [
    "Clause",
    "Entity",
    "Explanation",
    "Node",
    "QueryError",
    "RuleError",
    "TagResult",
    "Tagger",
    "Topic",
    "parse",
    "word_tokens",
]
