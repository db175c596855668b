"""The `samo` command as users call it: exit codes, one-line errors, the runner end to end."""
import json, os, subprocess, sys
from pathlib import Path

import pytest

from samo_nb.runner import make_toy_pipeline

ROOT = Path(__file__).resolve().parents[1]


def samo(*args, env=None, cwd=None):
    "Run the `samo` console script of this environment; returns the completed process."
    exe = Path(sys.executable).with_name('samo')
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or ROOT, timeout=600)


def one_line_error(proc, *fragments):
    "Assert a user error: exit code 2, one line on stderr, no traceback, mentioning `fragments`."
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr
    for f in fragments: assert f in lines[0], lines[0]


@pytest.mark.parametrize('command', ['run', 'data'])
def test_each_subcommand_has_help(command):
    proc = samo(command, '--help')
    assert proc.returncode == 0 and 'usage: samo ' + command in proc.stdout


def write_folder(folder, train_rows, dev_rows=('fine\t27\td1',)):
    folder.mkdir(parents=True, exist_ok=True)
    (folder/'train.tsv').write_text(''.join(r + '\n' for r in train_rows))
    (folder/'dev.tsv').write_text(''.join(r + '\n' for r in dev_rows))
    return folder


@pytest.mark.parametrize('rows, expected', [
    (['good\t1\ta', 'only two\t3'], 'train.tsv line 2: expected 3 tab-separated columns'),
    (['good\t1\ta', 'good\t2\tb', 'bad id\t31\tc'], 'train.tsv line 3: unknown label id 31'),
    (['\t4\ta'], 'train.tsv line 1: empty text'),
])
def test_data_errors_name_file_and_line(tmp_path, rows, expected):
    one_line_error(samo('data', '--data-dir', write_folder(tmp_path/'ge', rows)), expected)


def test_bad_encoding_and_missing_files(tmp_path):
    folder = write_folder(tmp_path/'ge', ['ok\t1\ta'])
    (folder/'dev.tsv').write_bytes(b'ok\t1\ta\n\xff\xfe\t2\tb\n')
    one_line_error(samo('data', '--data-dir', folder), 'dev.tsv line 2: not valid UTF-8')
    (folder/'dev.tsv').unlink()
    one_line_error(samo('data', '--data-dir', folder), 'missing dev.tsv')
    one_line_error(samo('data', '--data-dir', tmp_path/'nowhere'), 'GoEmotions folder not found')


def test_data_reports_test_split_when_present(tmp_path):
    folder = write_folder(tmp_path/'ge', ['happy\t17\ta', 'sad\t25\tb'])
    assert 'test  absent' in samo('data', '--data-dir', folder).stdout
    (folder/'test.tsv').write_text('angry\t2\tc\n')
    summary = json.loads(samo('data', '--data-dir', folder, '--json').stdout)
    assert {s: v['rows'] for s, v in summary.items()} == {'train': 2, 'dev': 1, 'test': 1}
    assert summary['test']['label_counts']['anger'] == 1


def test_run_toy_pipeline_and_failures(tmp_path):
    profile = make_toy_pipeline(tmp_path)
    base = ['run', '--profile', profile, '--nbs', tmp_path/'nbs', '--reports', tmp_path/'reports',
            '--models', tmp_path/'models', '-q']
    ok = samo(*base, '-p', 'greeting=salut')
    assert ok.returncode == 0, ok.stderr
    metrics = json.loads((tmp_path/'reports'/'latest'/'metrics.json').read_text())
    assert metrics['stages']['first']['greeting'] == 'salut' and metrics['status'] == 'ok'
    assert ok.stdout.strip().endswith('metrics.json')
    one_line_error(samo(*base, '-p', 'fail=true'), '02_second.ipynb failed in cell 3', 'asked to fail')
    one_line_error(samo(*base, '--only', '09'), '--only 09 matches no stage')
    one_line_error(samo(*base, '-p', 'nope'), 'write it as key=value')
    one_line_error(samo('run', '--profile', 'nonexistent'), "Profile 'nonexistent' not found")


def test_run_stops_on_malformed_tsv(tmp_path):
    "The real data notebook, run by papermill on a bad folder, fails with the loader's message."
    folder = write_folder(tmp_path/'ge', ['fine\t1\ta', 'broken\t28\tb'])
    proc = samo('run', '--only', '01', '--reports', tmp_path/'reports', '-q', env={'SAMO_DATA_DIR': str(folder)})
    one_line_error(proc, '01_data.ipynb failed in cell', 'DataFormatError', 'train.tsv line 2: unknown label id 28')
