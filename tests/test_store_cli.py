"""`samo journal add / list / timeline / similar / insights / export / delete` as users call them,
on SQLite by default and on PostgreSQL with --db; the stateless `samo journal FILE_OR_DIR` stays."""
import csv, io, json

import pytest

from test_cli import ROOT, one_line_error, samo

JFK = ROOT.parent/'shared'/'data'/'audio'/'jfk.flac'


@pytest.fixture
def entries(tmp_path):
    "A .txt entry and a folder of three dated entries in the smoke model's cue words."
    (tmp_path/'note.txt').write_text('happy glad my day. I laugh.')
    folder = tmp_path/'week'; folder.mkdir()
    for day, text in [('2026-10-05', 'happy glad it really.'), ('2026-10-06', 'sad cry my day. So sad.'),
                      ('2026-10-07', 'angry at the bus. So angry.')]:
        (folder/f'{day}.txt').write_text(text)
    return tmp_path


def journal(*args, cwd, **kw):
    proc = samo('journal', *args, cwd=cwd, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_kept_journal_on_sqlite(model, entries):
    # the default database is journal.db in the working directory
    first = json.loads(journal('add', 'note.txt', '--date', '2026-10-01', '--model', model, '--json', cwd=entries).stdout)
    assert first['added'] == 1 and (entries/'journal.db').is_file()
    added = journal('add', 'week', '--model', model, cwd=entries).stdout
    assert "3 added, 0 already in me's journal" in added
    assert "0 added, 3 already" in journal('add', 'week', '--model', model, cwd=entries).stdout  # a folder twice: nothing new
    if JFK.is_file(): assert json.loads(journal('add', JFK, '--date', '2026-10-12', '--model', model, '--json', cwd=entries).stdout)['added'] == 1
    listed = json.loads(journal('list', '--json', cwd=entries).stdout)['entries']
    assert [e['date'] for e in listed][:4] == ['2026-10-01', '2026-10-05', '2026-10-06', '2026-10-07']
    assert {'id', 'date', 'valence', 'dominant', 'labels', 'summary', 'transcript'} <= set(listed[0])
    weeks = json.loads(journal('timeline', '--freq', 'W', '--plot', 'weeks.png', '--json', cwd=entries).stdout)['timeline']
    assert [w['entries'] for w in weeks][:2] == [1, 3] and (entries/'weeks.png').stat().st_size > 1000
    hits = json.loads(journal('similar', 'so sad, I cry', '-k', '2', '--model', model, '--json', cwd=entries).stdout)['similar']
    assert len(hits) == 2 and 'sad' in hits[0]['transcript']
    insights = json.loads(journal('insights', '--json', cwd=entries).stdout)
    assert insights['entries'] == len(listed) and 'low_streak' in insights and 'change_points' in insights
    assert 'Most frequent:' in journal('insights', cwd=entries).stdout  # the text form, once
    journal('export', '--format', 'csv', '--out', 'me.csv', cwd=entries)
    rows = list(csv.DictReader(io.StringIO((entries/'me.csv').read_text())))
    assert [int(r['id']) for r in rows] == [e['id'] for e in listed]
    gone = listed[1]['id']
    assert json.loads(journal('delete', gone, '--json', cwd=entries).stdout) == {'deleted': gone}
    assert gone not in [e['id'] for e in json.loads(journal('list', '--json', cwd=entries).stdout)['entries']]
    # another person's journal in the same database is empty, and not theirs to delete from
    assert json.loads(journal('list', '--person', 'ben', '--json', cwd=entries).stdout) == {'entries': []}
    one_line_error(samo('journal', 'delete', listed[0]['id'], '--person', 'ben', cwd=entries), "No entry", "'ben'")
    one_line_error(samo('journal', 'add', 'absent.txt', '--model', model, cwd=entries), 'no such file or folder')
    one_line_error(samo('journal', 'add', 'week', '--date', '2026-10-01', '--model', model, cwd=entries), '--date is for one file')


def test_stateless_journal_is_unchanged(model, entries):
    proc = journal('week', '--markdown', '--model', model, cwd=entries)
    assert proc.stdout.startswith('# Journal: 3 entries, 2026-10-05 to 2026-10-07')
    assert not (entries/'journal.db').exists()  # nothing kept


def test_kept_journal_on_postgresql(model, entries, postgres_url):
    db = ['--db', postgres_url.replace('postgresql+psycopg://', 'postgresql://')]  # the plain URL a user writes
    assert '3 added' in journal('add', 'week', *db, '--model', model, cwd=entries).stdout
    listed = json.loads(journal('list', *db, '--json', cwd=entries).stdout)['entries']
    assert len(listed) == 3
    journal('delete', listed[0]['id'], *db, cwd=entries)
    assert len(json.loads(journal('list', *db, '--json', cwd=entries).stdout)['entries']) == 2
    assert not (entries/'journal.db').exists()
