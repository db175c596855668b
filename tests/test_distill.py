"""`samo distill` end to end on the smoke model and the synthetic data: one student, its report, its errors."""
import json

from test_cli import one_line_error, samo
from test_model_cli import data_dir  # noqa: F401 (the synthetic data as TSV files, a fixture)

TINY = ('params: {seed: 1}\nnotebooks:\n  04b_distill: {epochs: 3, lr: 2.0e-3, batch_size: 16, schedule: constant, '
        'warmup: 0.0, max_length: 16, distill_weight: 0.5, distill_temperature: 2.0}\n')


def test_distill_writes_a_calibrated_exported_student(model, data_dir, tmp_path):
    profile, out, cache = tmp_path/'tiny.yaml', tmp_path/'student', tmp_path/'teacher.npz'
    profile.write_text(TINY)
    common = ('--profile', profile, '--teacher-cache', cache, '--reports', tmp_path/'reports', '--models', tmp_path/'models', '-q')
    env = {'SAMO_DATA_DIR': str(data_dir)}
    proc = samo('distill', '--teacher', model, '--layers', '1', '--ffn', '32', '--out', out, *common, env=env)
    assert proc.returncode == 0, proc.stderr
    line, = proc.stdout.strip().splitlines()
    assert line.startswith(f'1-block student {out} of {model.resolve()}: dev macro-F1 ') and 'teacher cache computed' in line, line
    meta = json.loads((out/'samo.json').read_text())
    assert meta['distilled_from']['teacher'] == str(model.resolve()) and meta['distilled_from']['teacher_cache'] == str(cache)
    assert meta['distilled_from']['ffn'] == 32 and json.loads((out/'config.json').read_text())['intermediate_size'] == 32
    assert meta['config']['layers'] == 1 and 'calibration' in meta and (out/'model.int8.onnx').exists()
    assert (tmp_path/'models'/'latest').resolve() == out.resolve()
    report = json.loads((tmp_path/'reports'/'latest'/'metrics.json').read_text())
    assert list(report['notebooks']) == ['04b_distill', '05_calibrate', '05a_evaluate', '07_onnx']
    assert 'dev_crossfit' in report['stages']['evaluate'] and cache.stat().st_size < 10_000  # 128 rows x 28 in float16
    assert samo('predict', '--model', out, 'so happy').returncode == 0


def test_distill_errors(model, tmp_path):
    one_line_error(samo('distill', '--teacher', tmp_path, '--layers', '1', '--out', tmp_path/'s'),
                   'samo distill: error: teacher:', 'is not a samo model directory')
    one_line_error(samo('distill', '--teacher', model, '--layers', '5', '--out', tmp_path/'s'),
                   'layers=5: the student keeps 1 to 2 encoder blocks')
    one_line_error(samo('distill', '--teacher', model, '--layers', '1', '--ffn', '999', '--out', tmp_path/'s'),
                   'ffn=999: each block of', 'feed-forward neurons; keep 1 to')
