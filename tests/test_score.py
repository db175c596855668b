"""`samo score` as users call it: the output table, rejects and exit codes, resuming after a kill, workers, Ray."""
import json, os, shutil, signal, subprocess, sys, time

import numpy as np
import pandas as pd
import pytest

from samo_nb.core import LABELS
from samo_nb.batch import MANIFEST, run_measured, score_file, work_dir
from test_cli import one_line_error, samo

TEXTS = ['I am so happy for you', 'this is the worst day', 'why would you do that?', 'thanks a lot!', 'ok']


@pytest.fixture(scope='module')
def exported(model, tmp_path_factory):
    "The session's smoke model with an ONNX export (fp32 by default: scores do not depend on batch mates)."
    from samo_nb.onnx import export_onnx
    copy = shutil.copytree(model, tmp_path_factory.mktemp('score')/'model')
    export_onnx(copy)
    return copy


def corpus(path, n):
    "`n` texts with ids `r0`, `r1`, ... as a Parquet file."
    pd.DataFrame({'id': [f'r{i}' for i in range(n)], 'text': [TEXTS[i % len(TEXTS)] for i in range(n)]}).to_parquet(path)
    return path


def test_rejects_warning_and_summary(exported, tmp_path):
    lines = ['{"id": 0, "text": "so happy"}', '{"id": 1, "text": ""}', '{"id": 2, "text": null}', '{"id": 3, "text": 42}',
             'not json', '{"id": 5}', '{"id": 6, "text": "so sad"}']
    (tmp_path/'in.jsonl').write_text('\n'.join(lines) + '\n')
    proc = samo('score', tmp_path/'in.jsonl', '--out', tmp_path/'out.parquet', '--model', exported, '--id-column', 'id', '-q')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith('samo score: 7 rows, 5 rejected, ') and str(tmp_path/'out.parquet') in proc.stdout
    assert 'warning: 5 rows rejected' in proc.stderr and str(tmp_path/'out.rejects.csv') in proc.stderr
    rejects = pd.read_csv(tmp_path/'out.rejects.csv', keep_default_na=False)
    assert rejects.values.tolist() == [[1, '1', 'empty'], [2, '2', 'missing'], [3, '3', 'not a string (int)'],
                                       [4, '', 'invalid JSON (Expecting value)'], [5, '5', "no 'text' field"]]
    out = pd.read_parquet(tmp_path/'out.parquet')
    assert out['id'].tolist() == [0, 6] and out.columns[0] == 'id' and list(out.columns[1:29]) == list(LABELS)
    assert {'labels', 'ekman_joy', 'sentiment_positive', 'windows'} <= set(out.columns)
    assert not work_dir(tmp_path/'out.parquet').exists()


@pytest.mark.parametrize('make, fragments', [
    (lambda p: p/'absent.csv', ['absent.csv', 'no such file']),
    (lambda p: (p/'notes.txt').write_text('x') and p/'notes.txt', ["unknown type '.txt'"]),
    (lambda p: (p/'in.csv').write_text('body\nhi\n') and p/'in.csv', ["no column 'text'", '--column']),
])
def test_unreadable_input_is_one_line(exported, tmp_path, make, fragments):
    path = make(tmp_path)
    one_line_error(samo('score', path, '--out', tmp_path/'o.parquet', '--model', exported), str(path), *fragments)


def test_resume_after_sigkill_gives_the_same_table(exported, tmp_path):
    src = corpus(tmp_path/'in.parquet', 6000)
    args = ['score', str(src), '--model', str(exported), '--id-column', 'id', '--chunk-rows', '200', '-q']
    assert samo(*args, '--out', tmp_path/'whole.parquet').returncode == 0
    out, exe = tmp_path/'resumed.parquet', shutil.which('samo', path=os.path.dirname(sys.executable))
    proc = subprocess.Popen([exe, *args, '--out', str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest, deadline = work_dir(out)/MANIFEST, time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and len(json.loads(manifest.read_text())['chunks']) >= 5: break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    finished = len(json.loads(manifest.read_text())['chunks'])
    assert 5 <= finished < 30 and not out.exists(), finished  # killed halfway, nothing final written
    rerun = samo(*args, '--out', out)
    assert rerun.returncode == 0, rerun.stderr
    resumed, whole = pd.read_parquet(out), pd.read_parquet(tmp_path/'whole.parquet')
    assert resumed['id'].tolist() == [f'r{i}' for i in range(6000)]  # every row once, in order
    pd.testing.assert_frame_equal(resumed, whole)


def test_workers_agree_with_one_process(exported, tmp_path):
    src = corpus(tmp_path/'in.parquet', 900)
    for n in (1, 2):
        proc = samo('score', src, '--out', tmp_path/f'w{n}.csv', '--model', exported, '--workers', n, '--chunk-rows', '100', '-q')
        assert proc.returncode == 0, proc.stderr
    one, two = pd.read_csv(tmp_path/'w1.csv'), pd.read_csv(tmp_path/'w2.csv')
    assert two['row'].tolist() == list(range(900)) and two['labels'].equals(one['labels'])
    np.testing.assert_allclose(two[list(LABELS)], one[list(LABELS)], atol=1e-6)


def test_ray_gives_the_local_scores(exported, tmp_path):
    ray = pytest.importorskip('ray')
    from samo_nb.batch_ray import score_file_ray
    src = corpus(tmp_path/'in.parquet', 300)
    pd.DataFrame({'id': ['x', 'y'], 'text': ['', None]}).to_parquet(tmp_path/'bad.parquet')
    folder = tmp_path/'in'; folder.mkdir(); shutil.move(src, folder/'a.parquet'); shutil.move(tmp_path/'bad.parquet', folder/'b.parquet')
    local = score_file(folder, tmp_path/'local.parquet', exported, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, logging_level='ERROR', log_to_driver=False)
    try: remote = score_file_ray(folder, tmp_path/'ray.parquet', exported, actors=2, progress=False)
    finally: ray.shutdown()
    assert (remote.rows, remote.rejected) == (local.rows, local.rejected) == (302, 2)
    a, b = pd.read_parquet(tmp_path/'local.parquet'), pd.read_parquet(tmp_path/'ray.parquet')
    assert b['row'].tolist() == a['row'].tolist() == list(range(300)) and b['labels'].equals(a['labels'])
    np.testing.assert_allclose(b[list(LABELS)], a[list(LABELS)], atol=1e-5)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'ray.rejects.csv'), pd.read_csv(tmp_path/'local.rejects.csv'))


def test_ray_missing_is_one_line(exported, tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from samo_nb.cli import main; raise SystemExit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, '-c', code, 'score', str(corpus(tmp_path/'in.parquet', 3)), '--out',
                           str(tmp_path/'o.parquet'), '--model', str(exported), '--ray'], capture_output=True, text=True)
    one_line_error(proc, "pip install 'samo-nb[ray]'")


def peak_rss_mb(*args):
    "Run `samo score` in a fresh process (from a small launcher: `ru_maxrss` survives fork); its peak resident memory in MB."
    status, _, peak = run_measured([shutil.which('samo', path=os.path.dirname(sys.executable)), 'score', *args, '-q'])
    assert status == 0
    return peak


@pytest.mark.slow
def test_memory_stays_flat_as_the_input_grows(exported, tmp_path):
    texts = [TEXTS[i % len(TEXTS)] + f' {i}' for i in range(1_000_000)]
    pd.DataFrame({'text': texts[:100_000]}).to_csv(tmp_path/'small.csv', index=False)
    pd.DataFrame({'text': texts}).to_csv(tmp_path/'big.csv', index=False)
    small = peak_rss_mb(tmp_path/'small.csv', '--out', tmp_path/'small.parquet', '--model', exported)
    big = peak_rss_mb(tmp_path/'big.csv', '--out', tmp_path/'big.parquet', '--model', exported)
    print(f'peak RSS: 100,000 rows {small:.0f} MB, 1,000,000 rows {big:.0f} MB')
    assert len(pd.read_parquet(tmp_path/'big.parquet', columns=['row'])) == 1_000_000
    assert big <= 1.2 * small, (small, big)
