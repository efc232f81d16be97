"""Merge the collectors' files with the old dev set: events, families, and the held-out split by family."""
import collections
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from families import SAME, family  # noqa: E402

OLD = Path('/work/main/tests/data/labelled/dev.jsonl')
TOPICS = ["travel-approval", "poaching", "export-controls"]
FILES = sys.argv[1:]
SHARE = 1 / 3


def h(key):
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 100


rows = []
for r in map(json.loads, OLD.read_text().splitlines()):
    r = dict(r)
    r['event'] = r.get('event') or r['kind']
    r['batch'] = 'dev-1'
    rows.append(r)
seen = {r['url'] for r in rows}
problems = collections.Counter()
for f in FILES:
    for n, line in enumerate(open(f), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get('url') in seen:
            problems['dup url'] += 1
            continue
        missing = [k for k in ('title', 'summary', 'labels', 'outlet', 'date', 'url', 'language', 'event', 'kind')
                   if k not in r]
        if missing or not isinstance(r['labels'], list) or set(r['labels']) - set(TOPICS) or not (r['title'] or r['summary']):
            problems[f'bad item {f}:{n} {missing}'] += 1
            continue
        ev = r['event'].strip().removeprefix('old:')
        r['event'] = SAME.get(ev, ev)
        r['batch'] = 'dev-2'
        seen.add(r['url'])
        rows.append(r)
for r in rows:
    fam = family(r['event'])
    if fam != r['event']:
        r['family'] = fam
old_units = {r.get('family', r['event']) for r in rows if r['batch'] == 'dev-1'}


def unit(r):
    return r.get('family', r['event'])


def topic_of(r):
    return r['labels'] or ['none']


for percent in range(30, 101):
    held = {unit(r) for r in rows if unit(r) not in old_units and h(unit(r)) < percent}
    ok = True
    for t in TOPICS + ['none']:
        evs = {r['event'] for r in rows if t in topic_of(r)}
        hev = {r['event'] for r in rows if t in topic_of(r) and unit(r) in held}
        if len(hev) < SHARE * len(evs):
            ok = False
    if ok:
        break
print('percent', percent)
for r in rows:
    r['split'] = 'holdout' if unit(r) in held else 'tune'
keys = ['title', 'summary', 'labels', 'outlet', 'date', 'date_approx', 'url', 'language', 'event', 'family', 'kind',
        'note', 'source', 'split', 'batch']
out = [{k: r[k] for k in keys if k in r} for r in rows]
Path('/work/collect/merged.jsonl').write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in out))
print('problems', dict(problems))
print('items', len(out), 'splits', collections.Counter(r['split'] for r in out))
allev = {r['event'] for r in out}
hev = {r['event'] for r in out if r['split'] == 'holdout'}
print('events', len(allev), 'holdout', len(hev), 'share %.3f' % (len(hev) / len(allev)))
for t in TOPICS + ['none']:
    sel = [r for r in out if t in topic_of(r)]
    evs = {r['event'] for r in sel}
    hv = {r['event'] for r in sel if r['split'] == 'holdout'}
    print(f"{t:16} items {len(sel):4} zh {sum(r['language'] == 'zh' for r in sel):3} events {len(evs):3} "
          f"holdout events {len(hv):3} ({len(hv) / max(1, len(evs)):.2f}) holdout items "
          f"{sum(r['split'] == 'holdout' for r in sel)}")
