"""`samo predict` on the ONNX fast path, `samo export` and `samo bench`, on a tiny random model."""
import json, subprocess, sys

import pytest

from samo_nb.core import LABELS
from samo_nb.onnx import export_onnx
from samo_nb.testing import tiny_model
from test_cli import one_line_error, samo


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    "A tiny random model directory with its ONNX export."
    model = tiny_model(tmp_path_factory.mktemp('tiny')/'t')
    export_onnx(model)
    return model


def test_predict_takes_the_onnx_path_without_torch(exported):
    code = ('import sys; from samo_nb.cli import main; rc = main(sys.argv[1:]); '
            'assert "torch" not in sys.modules and "transformers" not in sys.modules, "heavy import"; raise SystemExit(rc)')
    proc = subprocess.run([sys.executable, '-c', code, 'predict', '--model', str(exported), '--top-k', '3', 'so happy', 'sad'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [o['text'] for o in out] == ['so happy', 'sad'] and all(len(o['scores']) == 3 for o in out)


def test_predict_backends_agree(exported):
    onnx, torch = (json.loads(samo('predict', '--model', exported, '--backend', b, 'i am so happy today').stdout)[0]
                   for b in ('onnx', 'torch'))
    assert list(onnx['scores']) == sorted(LABELS, key=lambda l: -onnx['scores'][l])
    assert all(abs(onnx['scores'][l] - torch['scores'][l]) < 1e-3 for l in LABELS)
    everything = json.loads(samo('predict', '--model', exported, '--threshold', '0', 'ok').stdout)[0]
    assert everything['labels'] == list(everything['scores'])


def test_export_command(tmp_path):
    model = tiny_model(tmp_path/'t')
    one_line_error(samo('predict', '--model', model, '--backend', 'onnx', 'fine'), 'has no ONNX export', 'samo export')
    one_line_error(samo('export', model, '--data-dir', tmp_path/'absent'), 'GoEmotions folder not found', '--no-check')
    proc = samo('export', model, '--no-check', '--json')
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary['default'] == 'fp32' and summary['parity_max_abs_prob_diff']['fp32'] < 1e-4
    assert (model/'model.onnx').exists() and (model/'model.int8.onnx').exists()
    assert samo('predict', '--model', model, '--backend', 'onnx', 'fine').returncode == 0


def test_bench_help_and_errors(tmp_path):
    proc = samo('bench', '--help')
    assert proc.returncode == 0 and 'usage: samo bench' in proc.stdout and '--json' in proc.stdout
    one_line_error(samo('bench', '--model', tmp_path), 'is not a samo model directory')


def test_bench_compares_models_in_one_run(exported, tmp_path):
    "`--compare` times another model beside --model and reports both, with the dev estimate each recorded."
    from samo_nb.core import update_model_meta
    from samo_nb.testing import tiny_goemotions, write_goemotions_tsv
    other = tiny_model(tmp_path/'other', seed=3)
    export_onnx(other)
    update_model_meta(other, {'dev_crossfit': {'macro_f1': 0.25, 'protocol': 'dev 2-fold cross-fit', 'calibration': {'thresholds': 'global'}}})
    data = write_goemotions_tsv(tmp_path/'data', tiny_goemotions(16, 24))
    one_line_error(samo('bench', '--model', exported, '--compare', tmp_path/'absent'), 'is not a samo model directory')
    proc = samo('bench', '--model', exported, '--compare', other, '--json', '--reports', tmp_path/'reports',
                *[a for p in ['peers=tiny', 'n_texts=3', 'repeats=1', 'batches=1', 'batch_size=4', 'f1_rows=8',
                              'compare_spin=false', f'data_dir={data}'] for a in ('-p', p)])
    assert proc.returncode == 0, proc.stderr
    rows = {r['model']: r for r in json.loads(proc.stdout)['comparison']}
    assert set(rows) == {f'{exported.parent.name}/model', 'other/model'}  # both folders are called model
    assert rows['other/model']['dev_macro_f1'] == 0.25 and rows['other/model']['thresholds'] == 'global'
    assert all(r['p50_ms'] > 0 and r['speedup_vs_peer-onnx-int8'] > 0 and r['encoder_blocks'] for r in rows.values())
