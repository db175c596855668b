"""The journal store on SQLite and on a real PostgreSQL server: migrations, one person's data
never shown to another, never duplicated, never half-written, concurrent writers, pages stable
under inserts, and concurrent retries under one idempotency key."""
import json, os, subprocess, sys, threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from samo_nb.core import SamoError
from samo_nb.journal import EntryAnalysis
from samo_nb.memory import Journal, stand_in
from samo_nb.store import BadCursor, Base, IdempotencyMismatch, head_revision, journal_engine, migrate, schema_revision

MODEL = ('stand-in', '0' * 16)


@pytest.fixture(params=['sqlite', 'postgresql'])
def url(request, tmp_path):
    "An empty database: a SQLite file, or a fresh database on the throwaway PostgreSQL server."
    return f'sqlite:///{tmp_path}/journal.db' if request.param == 'sqlite' else request.getfixturevalue('postgres_url')


@pytest.fixture(scope='module')
def template():
    "A hand-made analysis of one short entry (no model), the stand-ins' template."
    ekman = {'anger': 0.05, 'disgust': 0.02, 'fear': 0.03, 'joy': 0.7, 'sadness': 0.05, 'surprise': 0.05, 'neutral': 0.1}
    sentiment = {'positive': 0.7, 'negative': 0.1, 'ambiguous': 0.05, 'neutral': 0.15}
    emotions = {'labels': ['joy'], 'scores': {'joy': 0.7, 'sadness': 0.05, 'neutral': 0.1}, 'ekman': ekman,
                'sentiment': sentiment, 'valence': 0.6}
    sentence = {'text': 'A good day.', 'start': None, 'end': None, 'labels': ['joy'], 'scores': {'joy': 0.7},
                'ekman': ekman, 'sentiment': sentiment, 'valence': 0.6}
    emb = np.random.default_rng(0).normal(size=384).astype(np.float32)
    return EntryAnalysis('text', '2026-10-01', 'A good day.', None, None, None, [], [sentence], emotions,
                         {'valence': [0.6], 'dominant': ['joy'], 'start': 0.6, 'end': 0.6, 'trend': 0.0, 'shape': 'steady'},
                         'A good day.', 'extractive', {}, embedding=emb / np.linalg.norm(emb))


def entries_of(journal, person, template, days, start=0):
    "Stand-in entries stored for `person`, one per day of October 2026 from `start`."
    rng = np.random.default_rng(start)
    return [journal.add_analysis(person, stand_in(template, start + i, f'2026-10-{i + 1:02d}', rng), model=MODEL)[0]
            for i in range(days)]


def test_migrations_empty_to_head_and_back(url):
    engine = journal_engine(url)
    assert schema_revision(engine) is None
    assert migrate(engine) == head_revision()
    assert {'entries', 'entry_labels', 'alembic_version'} <= set(inspect(engine).get_table_names())
    with engine.connect() as c:  # the models and the migrations describe the same schema
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    assert migrate(engine, 'base') is None
    assert set(inspect(engine).get_table_names()) == {'alembic_version'}
    assert migrate(engine) == head_revision()
    engine.dispose()


def test_idempotency_migration_down_and_up_keeps_entries(url, template):
    journal = Journal(url)
    entries_of(journal, 'ana', template, 2)
    journal.add_analysis('ana', stand_in(template, 50, '2026-10-20', np.random.default_rng(50)), model=MODEL, idempotency_key='k')
    assert migrate(journal.engine, '0001') == '0001'
    assert 'idempotency_keys' not in inspect(journal.engine).get_table_names() and journal.count('ana') == 3
    assert migrate(journal.engine) == head_revision()
    with journal.engine.connect() as c:  # the models and the migrations still agree after the round trip
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    assert journal.count('ana') == 3 and journal.replay('ana', 'k', 'anything') is None  # the keys went with the table
    journal.engine.dispose()


def test_pages_are_stable_under_inserts(url, template):
    "Paging through a journal while another writer adds entries before and after the cursor: nothing skipped or repeated."
    journal = Journal(url)
    stored = [e.id for e in entries_of(journal, 'ana', template, 9, start=0)]
    seen, cursor, rng, september, november = [], None, np.random.default_rng(1), [], []
    while True:
        page, cursor = journal.page('ana', limit=2, cursor=cursor)
        seen += [e.id for e in page]
        if len(september) < 3:  # between pages, an entry before every cursor (September) and one after all (November)
            september.append(journal.add_analysis('ana', stand_in(template, 200 + len(september), f'2026-09-0{len(september) + 1}', rng), model=MODEL)[0].id)
            november.append(journal.add_analysis('ana', stand_in(template, 300 + len(november), f'2026-11-0{len(november) + 1}', rng), model=MODEL)[0].id)
        if cursor is None: break
    assert seen == stored + november  # October in order, nothing repeated; September came before the cursor
    assert [e.id for e in journal.page('ben')[0]] == []
    with pytest.raises(BadCursor): journal.page('ana', cursor='bm9wZQ')
    journal.engine.dispose()


def race(journal, analyses, key):
    "Each analysis added from its own thread at the same moment under one idempotency key: ids, or the exceptions."
    go = threading.Barrier(len(analyses))
    def one(e):
        go.wait()
        try: return journal.add_analysis('me', e, model=MODEL, idempotency_key=key)[0].id
        except IdempotencyMismatch as err: return err
    with ThreadPoolExecutor(len(analyses)) as pool: return list(pool.map(one, analyses))


def test_concurrent_retries_store_one_entry(url, template):
    journal = Journal(url)
    same = stand_in(template, 1, '2026-10-01', np.random.default_rng(1))
    ids = race(journal, [same] * 8, 'retry-1')
    assert len(set(ids)) == 1 and isinstance(ids[0], int) and journal.count('me') == 1
    others = [stand_in(template, 10 + i, '2026-10-02', np.random.default_rng(10 + i)) for i in range(8)]
    outcomes = race(journal, others, 'retry-2')  # eight different requests, one key: one wins
    assert sorted(type(o).__name__ for o in outcomes) == ['IdempotencyMismatch'] * 7 + ['int'] and journal.count('me') == 2
    with journal.engine.connect() as c: assert c.exec_driver_sql('SELECT count(*) FROM idempotency_keys').scalar() == 2
    journal.engine.dispose()


def test_one_person_never_sees_another(url, template):
    journal = Journal(url)
    ana = {e.id for e in entries_of(journal, 'ana', template, 6)}
    ben = {e.id for e in entries_of(journal, 'ben', template, 4, start=100)}
    assert {e.id for e in journal.entries('ana')} == ana and {e.id for e in journal.entries('ben')} == ben
    assert {e.id for e in journal.entries('ana', emotion='joy')} <= ana
    assert journal.timeline('ana', 'D').entries.sum() == 6
    assert {h['id'] for h in journal.similar('ana', entry_id=min(ana), k=50)} == ana - {min(ana)}
    assert journal.insights('ana')['entries'] == 6
    assert {json.loads(line)['id'] for line in journal.export('ana', 'jsonl').splitlines()} == ana
    someone_elses = min(ben)
    for read in (lambda: journal.get('ana', someone_elses), lambda: journal.delete('ana', someone_elses),
                 lambda: journal.similar('ana', entry_id=someone_elses)):
        with pytest.raises(SamoError, match=f"No entry {someone_elses} in 'ana'"): read()
    assert journal.count('ben') == 4 and journal.get('ben', someone_elses).id == someone_elses
    journal.delete('ben', someone_elses)
    assert journal.count('ben') == 3 and journal.count('ana') == 6
    journal.engine.dispose()


def test_same_content_same_day_is_stored_once(url, template):
    journal = Journal(url)
    entry = stand_in(template, 1, '2026-10-01', np.random.default_rng(0))
    first, created = journal.add_analysis('ana', entry, model=MODEL)
    again, created_again = journal.add_analysis('ana', entry, model=MODEL)
    assert (created, created_again, again.id) == (True, False, first.id)
    assert journal.add_analysis('ben', entry, model=MODEL)[1]  # another person's journal
    assert journal.add_analysis('ana', entry, model=MODEL, recorded_at='2026-10-02')[1]  # another day
    assert (journal.count('ana'), journal.count('ben')) == (2, 1)
    journal.engine.dispose()


def rows(journal):
    with journal.engine.connect() as c:
        return tuple(c.exec_driver_sql(f'SELECT count(*) FROM {t}').scalar() for t in ('entries', 'entry_labels'))


def test_failures_leave_nothing(url, template, monkeypatch):
    journal = Journal(url)
    entries_of(journal, 'ana', template, 2)
    before = rows(journal)
    def boom(session): raise RuntimeError('injected after the analysis, before the commit')
    event.listen(Session, 'before_commit', boom)
    try:
        with pytest.raises(RuntimeError, match='injected'):
            journal.add_analysis('ana', stand_in(template, 9, '2026-10-09', np.random.default_rng(9)), model=MODEL)
    finally: event.remove(Session, 'before_commit', boom)
    assert rows(journal) == before
    # a failing analysis: nothing is written either
    import samo_nb.store
    def failing_analysis(*args, **kwargs): raise SamoError('the analysis failed')
    monkeypatch.setattr(samo_nb.store, 'analyze_entry', failing_analysis)
    journal._detector, journal._model = object(), MODEL  # no model needed: the analysis fails anyway
    with pytest.raises(SamoError, match='the analysis failed'): journal.add('ana', 'A new day, never stored.', '2026-10-10')
    assert rows(journal) == before
    journal.engine.dispose()


WORKER = '''
import json, sys
import numpy as np
from samo_nb.journal import EntryAnalysis
from samo_nb.memory import Journal, stand_in
url, worker, n, shared, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
d = json.load(open(path))
template = EntryAnalysis(**{k: v for k, v in d.items() if k != 'embedding'}, embedding=np.array(d['embedding'], np.float32))
journal, rng = Journal(url), np.random.default_rng(worker)
ids = [journal.add_analysis('me', stand_in(template, -1 - i, '2026-10-01', rng), model=('stand-in', '0'))[0].id for i in range(shared)]
new = sum(journal.add_analysis('me', stand_in(template, worker * n + i, '2026-10-02', rng), model=('stand-in', '0'))[1] for i in range(n))
print(json.dumps({'new': new, 'shared_ids': ids}))
'''


def test_concurrent_writers(url, template, tmp_path):
    "4 processes x 200 new entries at once, plus 20 entries all four add: 820 rows, no error, one id per shared entry."
    Journal(url).engine.dispose()  # migrated once, before the writers start
    (tmp_path/'template.json').write_text(json.dumps(template.to_dict(embedding=True)))
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, url, str(w), '200', '20', str(tmp_path/'template.json')],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ) for w in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert [r['new'] for r in results] == [200] * 4
    assert all(r['shared_ids'] == results[0]['shared_ids'] for r in results)
    journal = Journal(url)
    assert journal.count('me') == 820
    assert len({e.id for e in journal.entries('me')}) == 820
    journal.engine.dispose()
