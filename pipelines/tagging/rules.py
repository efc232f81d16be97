"""Load topics.toml: entities with aliases, named term lists and topics defined by a query, validated into a
Tagger."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from pipelines.tagging import Entity, QueryError, RuleError, Tagger, Topic, word_tokens
from pipelines.tagging.learned import Model, ModelError
from pipelines.tagging.matcher import entity_kinds
from pipelines.tagging.query import list_words
from talentwatch.schema import ConfigError, check_keys, read_toml

RULE_ID = re.compile(r"^[a-z0-9-]+$")
KINDS = {"org", "person", "gov", "place"}


class Rules(NamedTuple):
    """What a topics.toml defines: topics, entities, the term lists (id -> words) queries use as $id, and the
    learned second route's model file (``[learned] model``, relative to the topics.toml), if any."""

    topics: list[Topic]
    entities: list[Entity]
    lists: dict[str, tuple[str, ...]]
    model_path: Path | None = None
    path: Path | None = None

    @property
    def kinds(self) -> dict[str, list[str]]:
        """Entity kind -> the ids of its entities (what ``@kind:K`` in a query stands for)."""
        return entity_kinds(self.entities)

    def search(self, query: str, topic: str = "q") -> Tagger:
        """A Tagger whose only topic is ``query`` (with these entities and term lists): how `items --query`, the
        web view's ``q`` and a query tried at /rules select items. RuleError names the position of a mistake."""
        return Tagger([Topic(topic, topic, query)], self.entities, self.lists)

    def tagger(self, learned: bool = True) -> Tagger:
        """The Tagger (without ``learned``: the rules alone); ConfigError for a bad query (naming the topic and the
        position) or a model file that cannot be used."""
        model = None
        if learned and self.model_path is not None:
            try:
                model = Model.load(self.model_path, {e.id: e.kind for e in self.entities})
            except ModelError as e:
                hint = ("; copy the shipped talentwatch/defaults/topics.model.json beside it, or remove [learned]"
                        if not self.model_path.exists() else "")
                raise ConfigError(self.path, "learned model", f"{self.model_path}: {e}{hint}") from None
            unknown = sorted(set(model.topics) - {t.id for t in self.topics})
            if unknown:
                raise ConfigError(self.path, "learned model", f"{self.model_path}: unknown topic {', '.join(unknown)}")
        try:
            return Tagger(self.topics, self.entities, self.lists, model)
        except RuleError as e:
            raise ConfigError(self.path, f"topic '{e.topic_id}'", f"{e.message} at position {e.position}") from None


def load_rules(path: Path | str) -> Rules:
    """The rules of a topics.toml; ConfigError names the file, the entry and what is wrong."""
    path = Path(path)
    raw = read_toml(path)
    check_keys(path, "", raw, {"topic", "entity", "terms", "learned"})
    entities = [_entity(path, n, t) for n, t in enumerate(_tables(path, raw, "entity"), 1)]
    lists = [_term_list(path, n, t) for n, t in enumerate(_tables(path, raw, "terms"), 1)]
    topics = [_topic(path, n, t) for n, t in enumerate(_tables(path, raw, "topic"), 1)]
    for kind, ids in (("entity", [e.id for e in entities]), ("terms", [i for i, _ in lists]),
                      ("topic", [t.id for t in topics])):
        for dup in {i for i in ids if ids.count(i) > 1}:
            raise ConfigError(path, f"{kind} '{dup}'", "duplicate id")
    return Rules(topics, entities, dict(lists), _model_path(path, raw), path)


def load_tagger(path: Path | str, learned: bool = True) -> Tagger:
    """A Tagger for a topics.toml (without ``learned``: the rules alone); see :meth:`Rules.tagger`."""
    return load_rules(path).tagger(learned)


def _tables(path: Path, raw: dict, kind: str) -> list[dict]:
    tables = raw.get(kind, [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(path, kind, f"expected [[{kind}]] tables")
    return tables


def _id(path: Path, kind: str, n: int, t: dict) -> str:
    rid = t.get("id")
    if not isinstance(rid, str) or not RULE_ID.match(rid):
        raise ConfigError(path, f"{kind} #{n} id", f"expected an id of [a-z0-9-]+, got {rid!r}")
    return rid


def _entity(path: Path, n: int, t: dict) -> Entity:
    eid = _id(path, "entity", n, t)
    check_keys(path, f"entity '{eid}' ", t, {"id", "name", "kind", "aliases", "aliases_cs", "exclude"})
    aliases, exact, exclude = (_strings(path, eid, t, key) for key in ("aliases", "aliases_cs", "exclude"))
    if t.get("kind", "org") not in KINDS:
        raise ConfigError(path, f"entity '{eid}' kind", f"expected one of {sorted(KINDS)}, got {t.get('kind')!r}")
    name = t.get("name", eid)
    if not isinstance(name, str) or not name:
        raise ConfigError(path, f"entity '{eid}' name", "expected a non-empty string")
    for alias in (name, *aliases, *exact, *exclude):
        if not word_tokens(alias):
            raise ConfigError(path, f"entity '{eid}'", f"{alias!r} has no letters or digits")
    return Entity(id=eid, name=name, kind=t.get("kind", "org"), aliases=(*aliases, *exact),
                  case_sensitive=exact, exclude=exclude)


def _strings(path: Path, eid: str, t: dict, key: str) -> tuple[str, ...]:
    values = t.get(key, [])
    if not isinstance(values, list) or not all(isinstance(a, str) and a.strip() for a in values):
        raise ConfigError(path, f"entity '{eid}' {key}", "expected a list of non-empty strings")
    return tuple(values)


def _model_path(path: Path, raw: dict) -> Path | None:
    learned = raw.get("learned")
    if learned is None:
        return None
    if not isinstance(learned, dict):
        raise ConfigError(path, "learned", "expected a [learned] table")
    check_keys(path, "learned ", learned, {"model"})
    model = learned.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(path, "learned model", "expected the path of a model file")
    return path.parent / model


def _term_list(path: Path, n: int, t: dict) -> tuple[str, tuple[str, ...]]:
    lid = _id(path, "terms", n, t)
    check_keys(path, f"terms '{lid}' ", t, {"id", "words"})
    words = t.get("words")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
        raise ConfigError(path, f"terms '{lid}' words", "expected a non-empty list of non-empty strings")
    try:
        list_words(words)
    except QueryError as e:
        raise ConfigError(path, f"terms '{lid}' words[{e.position}]", e.message) from None
    return lid, tuple(words)


def _topic(path: Path, n: int, t: dict) -> Topic:
    tid = _id(path, "topic", n, t)
    check_keys(path, f"topic '{tid}' ", t, {"id", "name", "query"})
    query = t.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(path, f"topic '{tid}' query", "expected a non-empty query string")
    return Topic(id=tid, name=t.get("name", tid), query=query)
