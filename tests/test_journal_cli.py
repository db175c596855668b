"""`samo transcribe` and `samo journal` as users call them: output, exit codes, one-line errors."""
import json, subprocess
from pathlib import Path

import numpy as np
import pytest

from test_cli import ROOT, one_line_error, samo

JFK = ROOT.parent/'shared'/'data'/'audio'/'jfk.flac'
pytestmark = pytest.mark.skipif(not JFK.is_file(), reason=f'{JFK} is not there')


def ffmpeg(*args):
    subprocess.run(['ffmpeg', '-nostdin', '-v', 'error', '-y', *map(str, args)], check=True, timeout=60)


@pytest.fixture(scope='module')
def audio(tmp_path_factory):
    "JFK as mp3, two seconds of silence, a corrupt and an empty file."
    folder = tmp_path_factory.mktemp('audio')
    ffmpeg('-i', JFK, folder/'jfk.mp3')
    ffmpeg('-f', 'lavfi', '-i', 'anullsrc=r=16000:cl=mono', '-t', 2, folder/'silence.wav')
    (folder/'corrupt.wav').write_bytes(np.random.default_rng(0).bytes(20_000))
    (folder/'empty.ogg').touch()
    return folder


def test_transcribe(audio):
    proc = samo('transcribe', audio/'jfk.mp3')
    assert proc.returncode == 0, proc.stderr
    assert 'ask not what your country can do for you' in proc.stdout
    seg = samo('transcribe', audio/'silence.wav', '--json')
    assert seg.returncode == 0, seg.stderr
    out = json.loads(seg.stdout)
    assert (out['text'], out['reason'], out['segments']) == ('', 'no speech detected', [])


def test_transcribe_errors(audio, tmp_path):
    one_line_error(samo('transcribe', audio/'corrupt.wav'), 'ffmpeg cannot decode it')
    one_line_error(samo('transcribe', audio/'empty.ogg'), 'is empty (0 bytes)')
    (tmp_path/'notes.txt').write_text('hello')
    one_line_error(samo('transcribe', tmp_path/'notes.txt'), "unsupported file type '.txt'")
    one_line_error(samo('transcribe', tmp_path/'absent.wav'), 'no such audio file')


def test_journal_entry_json(model):
    proc = samo('journal', JFK, '--json', '--model', model)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert 'ask not what your country' in out['transcript']
    assert out['summary'] and out['emotions']['scores'] and set(out['emotions']['ekman']) >= {'joy', 'neutral'}
    assert out['timings']['total_rtf'] > 0 and out['sentences'][0]['start'] == 0


def test_journal_folder_markdown(model, tmp_path):
    folder = tmp_path/'journal'; folder.mkdir()
    (folder/'2026-10-01.txt').write_text('happy glad my day. I laugh.')
    (folder/'2026-10-08.txt').write_text('sad cry my day. So sad.')
    proc = samo('journal', folder, '--markdown', '--model', model, '--plot', tmp_path/'timeline.png')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('# Journal: 2 entries, 2026-10-01 to 2026-10-08')
    assert '## Notable shifts' in proc.stdout and (tmp_path/'timeline.png').stat().st_size > 1000


def test_journal_errors(model, audio, tmp_path):
    one_line_error(samo('journal', tmp_path/'absent.wav', '--model', model), 'no such file or folder')
    one_line_error(samo('journal', audio/'corrupt.wav', '--model', model), 'ffmpeg cannot decode it')
    # no --model and no default model: points at `make run` or --model
    one_line_error(samo('journal', JFK, env={'SAMO_ROOT': str(tmp_path)}), 'No default model yet')
