"""`samo train`, `samo eval` and `samo predict` on a tiny model and tiny data built in-process."""
import json

import pytest

from samo_nb.core import LABELS
from samo_nb.testing import make_tiny_encoder, tiny_goemotions, write_goemotions_tsv
from test_cli import one_line_error, samo

METRIC_KEYS = {'macro_f1', 'micro_f1', 'weighted_f1', 'precision', 'recall', 'ekman_macro_f1',
               'sentiment_macro_f1', 'ece', 'n', 'split', 'per_class'}


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
    "The synthetic cue-word data as GoEmotions TSV files (train, dev, test)."
    splits = tiny_goemotions(128, 48) | {'test': tiny_goemotions(0, 40, seed=5)['dev']}
    return write_goemotions_tsv(tmp_path_factory.mktemp('data'), splits)


def test_predict_json(model):
    proc = samo('predict', '--model', model, 'so happy', 'thanks thank you')
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [o['text'] for o in out] == ['so happy', 'thanks thank you']
    for o in out:
        scores = list(o['scores'].values())  # all 28, highest first (rounded ties may come in either order)
        assert set(o['scores']) == set(LABELS) and scores == sorted(scores, reverse=True)
        assert set(o['ekman']) == {'anger', 'disgust', 'fear', 'joy', 'sadness', 'surprise', 'neutral'}
        assert set(o['labels']) <= set(LABELS)
    # the smoke model is uncalibrated (thresholds 0.5): its learnt cue words show in the ranking
    assert next(iter(out[0]['scores'])) == 'joy' and next(iter(out[1]['scores'])) == 'gratitude'


def test_predict_errors(model, tmp_path):
    one_line_error(samo('predict', '--model', model, 'fine', '   '), 'Text 2 is empty')
    one_line_error(samo('predict', '--model', tmp_path, 'fine'), 'is not a samo model directory')


def test_eval_json_on_test_and_dev(model, data_dir):
    test = json.loads(samo('eval', '--model', model, '--data-dir', data_dir, '--json').stdout)
    assert METRIC_KEYS <= set(test) and test['split'] == 'test' and test['n'] == 40
    assert set(test['per_class']) == set(LABELS)
    assert set(test['per_class']['joy']) == {'precision', 'recall', 'f1', 'support', 'threshold'}
    dev = json.loads(samo('eval', '--model', model, '--data-dir', data_dir, '--split', 'dev', '--json').stdout)
    assert dev['split'] == 'dev' and dev['protocol'] == 'dev 2-fold cross-fit' and dev['n'] == 48


def test_eval_without_test_split(model, data_dir, tmp_path):
    for split in ('train', 'dev'): (tmp_path/f'{split}.tsv').write_text((data_dir/f'{split}.tsv').read_text())
    one_line_error(samo('eval', '--model', model, '--data-dir', tmp_path, '--split', 'test'), 'No test split')
    assert json.loads(samo('eval', '--model', model, '--data-dir', tmp_path, '--json').stdout)['split'] == 'dev'


def test_train_writes_a_model_every_command_takes(tmp_path, data_dir):
    encoder = make_tiny_encoder(tmp_path/'encoder', seed=1)
    profile = tmp_path/'tiny.yaml'
    profile.write_text('params: {seed: 1}\nnotebooks:\n  04_train: {epochs: 3, lr: 2.0e-3, batch_size: 16, '
                       'schedule: constant, warmup: 0.0, train_rows: 0, dev_rows: 0, max_length: 16}\n')
    out = tmp_path/'model'
    proc = samo('train', '--profile', profile, '--model', encoder, '--loss', 'asl', '--out', out,
                '--reports', tmp_path/'reports', '--models', tmp_path/'models', '-q', env={'SAMO_DATA_DIR': str(data_dir)})
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out/'samo.json').read_text())
    assert meta['config']['loss'] == 'asl' and 'calibration' in meta and meta['encoder'] == str(encoder)
    assert (tmp_path/'models'/'latest').resolve() == out.resolve()
    report = json.loads((tmp_path/'reports'/'latest'/'metrics.json').read_text())
    assert list(report['notebooks'])[:3] == ['04_train', '05_calibrate', '05a_evaluate']
    assert '07_onnx' in report['notebooks'] and (out/'model.int8.onnx').exists()  # training runs export
    assert not {'07a_detect', '07b_bench', '10_journal', '11a_serve_load'} & set(report['notebooks'])  # only model stages
    assert json.loads((out/'samo.json').read_text())['onnx']['default'] in ('fp32', 'int8')
    assert 'test' in report['stages']['evaluate'] and 'dev_crossfit' in report['stages']['evaluate']
    assert samo('predict', '--model', out, 'so happy').returncode == 0
