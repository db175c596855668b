"""The HTTP API against a real `samo serve` on loopback: bad input, API keys, fuzzing, load.

Every test talks to uvicorn over TCP, serving the real `EmotionDetector` on a tiny model
trained in-process (`samo_nb.testing.smoke_model`), so what is tested is what is deployed.
Each test sends what it checks itself, so it passes or fails the same alone or in the file.
"""
import json, os, subprocess, sys, uuid

import httpx
import pytest

from samo_nb.core import process_memory
from prometheus_client.parser import text_string_to_metric_families

from samo_nb.serve_load import load_test, running_server
from samo_nb.testing import tone_wav

# Small limits, so the oversize cases stay small and quick.
LIMITS = {'SAMO_MAX_BODY_BYTES': str(256 * 1024), 'SAMO_MAX_UPLOAD_BYTES': str(1_000_000), 'SAMO_MAX_AUDIO_S': '5',
          'SAMO_API_KEYS': '', 'SAMO_STORE_DIR': ''}
KEYS = ('key-one', 'alice:key-two')  # a bare key and a person:key pair
SECRET = f'secret-{uuid.uuid4().hex}'  # sent in texts; must never reach the log


@pytest.fixture(scope='module')
def server(model):
    with running_server(model, env=LIMITS) as s: yield s


@pytest.fixture(scope='module')
def keyed(model):
    env = LIMITS | {'SAMO_API_KEYS': ','.join(KEYS), 'SAMO_RATE_PER_S': '0.01', 'SAMO_RATE_BURST': '3'}
    with running_server(model, env=env) as s: yield s


def call(server, method, path, **kwargs):
    return httpx.request(method, server.url + path, timeout=60, **kwargs)


def request_log(server):
    "The server's JSON request log lines."
    lines = [json.loads(l) for l in server.log().splitlines() if l.startswith('{')]
    return [l for l in lines if l.get('msg') == 'request']


def server_errors(server):
    "Requests the server answered with a 5xx (but /ready's 503 while the model loads at start-up)."
    return [l for l in request_log(server) if l['status'] >= 500 and l['route'] != '/ready']


def assert_healthy(server):
    "The server answers, still scores a text, and has answered no request with a 5xx."
    assert call(server, 'GET', '/health').status_code == 200
    assert call(server, 'POST', '/v1/emotions', json={'text': 'still here'}).status_code == 200
    assert not server_errors(server), server_errors(server)[:3]
    assert server.proc.poll() is None


def batch_histogram(server):
    "The server's `samo_inference_batch_texts` histogram: {'count': forward passes, 'sum': texts, 'le=1.0': one-text passes}."
    families = text_string_to_metric_families(call(server, 'GET', '/metrics').text)
    family = next(f for f in families if f.name == 'samo_inference_batch_texts')
    out = {}
    for sample in family.samples:
        if sample.name.endswith('_count'): out['count'] = sample.value
        elif sample.name.endswith('_sum'): out['sum'] = sample.value
        elif sample.name.endswith('_bucket') and sample.labels['le'] == '1.0': out['le=1.0'] = sample.value
    return out


def assert_error(r, status, error=None):
    "A JSON error `{error, detail}` with `status`."
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers['content-type'].startswith('application/json'), r.headers
    body = r.json()
    assert set(body) == {'error', 'detail'} and body['error'] and body['detail'], body
    if error: assert body['error'] == error, body
    return body


# ---------------------------------------------------------------- the happy paths

def test_routes_answer(server):
    assert call(server, 'GET', '/health').json() == {'status': 'ok'}
    ready = call(server, 'GET', '/ready').json()
    assert ready['status'] == 'ready' and ready['labels'] == 28
    one = call(server, 'POST', '/v1/emotions', json={'text': 'I am so happy today!'})
    assert one.status_code == 200, one.text
    result = one.json()['results'][0]
    assert len(result['scores']) == 28 and set(result) >= {'labels', 'scores', 'ekman', 'sentiment'}
    assert list(result['scores'].values()) == sorted(result['scores'].values(), reverse=True)
    batch = call(server, 'POST', '/v1/emotions', json={'texts': ['thanks!', 'this is awful', 'hmm'], 'top_k': 3,
                                                       'threshold': 0.2})
    assert batch.status_code == 200 and [len(r['scores']) for r in batch.json()['results']] == [3, 3, 3]
    assert call(server, 'GET', '/docs').status_code == 200
    schema = call(server, 'GET', '/openapi.json').json()
    assert {'/v1/emotions', '/v1/journal', '/health', '/ready', '/metrics'} <= set(schema['paths'])
    metrics = call(server, 'GET', '/metrics').text
    assert 'samo_http_requests_total{method="POST",route="/v1/emotions",status="200"}' in metrics
    assert 'samo_inference_duration_seconds_bucket' in metrics and 'samo_http_request_duration_seconds_bucket' in metrics


def test_request_ids(server):
    r = call(server, 'POST', '/v1/emotions', json={'text': 'hello'}, headers={'X-Request-ID': 'client-42'})
    assert r.headers['x-request-id'] == 'client-42'
    r = call(server, 'POST', '/v1/emotions', json={'text': 'hello'}, headers={'X-Request-ID': 'bad id\twith junk'})
    assert len(r.headers['x-request-id']) == 32  # replaced by a fresh one
    assert 'client-42' in server.log()


def test_journal_text(server):
    r = call(server, 'POST', '/v1/journal', json={'text': 'Work was awful today. But dinner with Sam made me so happy!'})
    assert r.status_code == 200, r.text
    entry = r.json()
    assert {'transcript', 'sentences', 'emotions', 'summary', 'timings'} <= set(entry)
    assert len(entry['sentences']) == 2 and entry['emotions']['labels'] is not None and entry['summary']


def test_journal_text_is_never_read_as_a_path(server, tmp_path):
    secret = tmp_path/'diary.txt'
    secret.write_text(f'{SECRET} the server must not read this file')
    r = call(server, 'POST', '/v1/journal', json={'text': str(secret)})
    assert r.status_code == 200, r.text
    assert SECRET not in r.text and r.json()['transcript'] == str(secret)


def test_journal_audio(server):
    from samo_nb.asr import speak
    wav = speak('I am so happy today. The sun is out and I finally finished my project.')
    r = call(server, 'POST', '/v1/journal', files={'audio': ('entry.wav', wav.read_bytes(), 'audio/wav')})
    assert r.status_code == 200, r.text
    entry = r.json()
    assert 'happy' in entry['transcript'].lower() and entry['duration_s'] > 2 and entry['emotions']
    assert call(server, 'GET', '/ready').json()['asr'] == 'loaded'
    silence = call(server, 'POST', '/v1/journal', files={'audio': ('quiet.wav', tone_wav(1.0, freq=0), 'audio/wav')})
    assert silence.status_code == 200 and silence.json()['transcript'] == ''


# ---------------------------------------------------------------- bad input

def _chunks(*parts):
    yield from parts

WAV = tone_wav(1.0)
BAD_INPUT = [
    # name, method, path, request kwargs, status, error code (None: any)
    ('empty text', 'POST', '/v1/emotions', dict(json={'text': ''}), 422, 'invalid_request'),
    ('whitespace only', 'POST', '/v1/emotions', dict(json={'text': ' \n\t\u3000 '}), 422, 'invalid_request'),
    ('1 MB text', 'POST', '/v1/emotions', dict(json={'text': SECRET + 'x' * 1_000_000}), 413, 'payload_too_large'),
    ('10,000 texts', 'POST', '/v1/emotions', dict(json={'texts': ['ok'] * 10_000}), 422, None),
    ('65 texts', 'POST', '/v1/emotions', dict(json={'texts': ['ok'] * 65}), 422, None),
    ('text over 5,000 chars', 'POST', '/v1/emotions', dict(json={'text': SECRET + 'y' * 5000}), 422, None),
    ('texts over 50,000 chars together', 'POST', '/v1/emotions', dict(json={'texts': ['z' * 4000] * 20}), 422, None),
    ('empty texts list', 'POST', '/v1/emotions', dict(json={'texts': []}), 422, None),
    ('empty string in texts', 'POST', '/v1/emotions', dict(json={'texts': ['fine', '']}), 422, None),
    ('text and texts', 'POST', '/v1/emotions', dict(json={'text': 'a', 'texts': ['b']}), 422, None),
    ('empty object', 'POST', '/v1/emotions', dict(json={}), 422, None),
    ('text is a number', 'POST', '/v1/emotions', dict(json={'text': 42}), 422, None),
    ('texts is a string', 'POST', '/v1/emotions', dict(json={'texts': 'abc'}), 422, None),
    ('null in texts', 'POST', '/v1/emotions', dict(json={'texts': ['a', None]}), 422, None),
    ('top_k 0', 'POST', '/v1/emotions', dict(json={'text': 'a', 'top_k': 0}), 422, None),
    ('top_k a string', 'POST', '/v1/emotions', dict(json={'text': 'a', 'top_k': 'three'}), 422, None),
    ('threshold 2', 'POST', '/v1/emotions', dict(json={'text': 'a', 'threshold': 2}), 422, None),
    ('unknown field', 'POST', '/v1/emotions', dict(json={'text': 'a', 'model': 'other'}), 422, None),
    ('deeply nested JSON', 'POST', '/v1/emotions', dict(content=b'[' * 100_000 + b']' * 100_000, headers={'content-type': 'application/json'}), None, None),
    ('number too large', 'POST', '/v1/emotions', dict(content=b'{"text": "a", "top_k": 1e999}', headers={'content-type': 'application/json'}), 422, None),
    ('JSON array body', 'POST', '/v1/emotions', dict(json=['a', 'b']), 422, None),
    ('JSON null body', 'POST', '/v1/emotions', dict(content=b'null', headers={'content-type': 'application/json'}), 422, None),
    ('invalid JSON', 'POST', '/v1/emotions', dict(content=b'{"text": "unfinished', headers={'content-type': 'application/json'}), 400, 'invalid_json'),
    ('non-UTF-8 bytes', 'POST', '/v1/emotions', dict(content=b'{"text": "caf\xe9 \xff"}', headers={'content-type': 'application/json'}), 400, None),
    ('lone surrogate', 'POST', '/v1/emotions', dict(content=b'{"text": "a \\ud800 b"}', headers={'content-type': 'application/json'}), 422, None),
    ('text/plain body', 'POST', '/v1/emotions', dict(content=b'I am happy', headers={'content-type': 'text/plain'}), 415, 'unsupported_media_type'),
    ('no content type', 'POST', '/v1/emotions', dict(content=b'{"text": "a"}'), 415, None),
    ('form-encoded body', 'POST', '/v1/emotions', dict(data={'text': 'a'}), 415, None),
    ('chunked body over the limit', 'POST', '/v1/emotions',
     dict(content=_chunks(b'{"text": "', b'x' * 300_000, b'"}'), headers={'content-type': 'application/json'}), 413, None),
    ('GET on a POST route', 'GET', '/v1/emotions', {}, 405, 'method_not_allowed'),
    ('PUT on /health', 'PUT', '/health', {}, 405, None),
    ('unknown path', 'GET', '/v2/emotions', {}, 404, 'not_found'),
    ('journal: empty text', 'POST', '/v1/journal', dict(json={'text': ''}), 422, None),
    ('journal: wrong field', 'POST', '/v1/journal', dict(json={'entry': 'hello'}), 422, None),
    ('journal: invalid JSON', 'POST', '/v1/journal', dict(content=b'{', headers={'content-type': 'application/json'}), 400, None),
    ('journal: text/plain', 'POST', '/v1/journal', dict(content=b'hello', headers={'content-type': 'text/plain'}), 415, None),
    ('journal: unsupported format', 'POST', '/v1/journal', dict(files={'audio': ('notes.txt', b'hello', 'text/plain')}), 415, None),
    ('journal: image upload', 'POST', '/v1/journal', dict(files={'audio': ('face.png', b'\x89PNG\r\n' + bytes(100), 'image/png')}), 415, None),
    ('journal: corrupt audio', 'POST', '/v1/journal', dict(files={'audio': ('day.wav', b'RIFF' + os.urandom(4000), 'audio/wav')}), 422, 'corrupt_audio'),
    ('journal: truncated mp3', 'POST', '/v1/journal', dict(files={'audio': ('day.mp3', b'ID3\x03\x00' + bytes(50), 'audio/mpeg')}), 422, None),
    ('journal: empty file', 'POST', '/v1/journal', dict(files={'audio': ('day.wav', b'', 'audio/wav')}), 422, None),
    ('journal: oversized upload', 'POST', '/v1/journal', dict(files={'audio': ('day.wav', WAV + bytes(1_200_000), 'audio/wav')}), 413, None),
    ('journal: recording too long', 'POST', '/v1/journal', dict(files={'audio': ('day.wav', tone_wav(7.0, rate=8000), 'audio/wav')}), 413, 'audio_too_long'),
    ('journal: no audio field', 'POST', '/v1/journal', dict(files={'file': ('day.wav', WAV, 'audio/wav')}), 422, None),
    ('journal: broken multipart', 'POST', '/v1/journal', dict(content=b'--xyz\r\nnot a part', headers={'content-type': 'multipart/form-data; boundary=xyz'}), None, None),
]


@pytest.mark.parametrize('method, path, kwargs, status, error', [pytest.param(*c[1:], id=c[0]) for c in BAD_INPUT])
def test_bad_input(server, method, path, kwargs, status, error):
    r = call(server, method, path, **kwargs)
    if status is None: assert 400 <= r.status_code < 500, r.text  # any 4xx
    else: assert_error(r, status, error)


def test_healthy_after_bad_input_and_nothing_logged(server):
    "The whole table of bad input, then a text with the secret: the server is well, and no text reached its log."
    assert len(BAD_INPUT) >= 25
    sent_before = len(request_log(server))
    for _, method, path, kwargs, *_ in BAD_INPUT:
        assert 400 <= call(server, method, path, **kwargs).status_code < 500
    assert any(SECRET in json.dumps(c[3].get('json')) for c in BAD_INPUT)  # the table sends the secret
    assert call(server, 'POST', '/v1/emotions', json={'text': f'{SECRET} I am fine, thank you.'}).status_code == 200
    assert_healthy(server)
    assert SECRET not in server.log(), 'request texts reached the log'
    requests = request_log(server)[sent_before:]
    assert len(requests) >= len(BAD_INPUT) and all({'request_id', 'route', 'status', 'ms'} <= set(l) for l in requests)


# ---------------------------------------------------------------- API keys and rate limits

def test_api_keys_and_rate_limit(keyed):
    body = {'json': {'text': 'hello there'}}
    assert_error(call(keyed, 'POST', '/v1/emotions', **body), 401, 'unauthorized')
    assert_error(call(keyed, 'POST', '/v1/emotions', headers={'X-API-Key': 'wrong'}, **body), 403, 'forbidden')
    assert_error(call(keyed, 'POST', '/v1/journal', headers={'X-API-Key': ''}, **body), 401)
    ok = [call(keyed, 'POST', '/v1/emotions', headers={'X-API-Key': KEYS[0]}, **body).status_code for _ in range(3)]
    assert ok == [200, 200, 200]
    limited = call(keyed, 'POST', '/v1/emotions', headers={'X-API-Key': KEYS[0]}, **body)
    assert_error(limited, 429, 'rate_limited')
    assert int(limited.headers['retry-after']) >= 1
    # the other key (a person:key pair) has its own bucket, and may come as a bearer token
    assert call(keyed, 'POST', '/v1/emotions', headers={'Authorization': 'Bearer key-two'}, **body).status_code == 200
    assert_error(call(keyed, 'POST', '/v1/emotions', headers={'X-API-Key': KEYS[1]}, **body), 403)  # the pair is not the key
    # the service routes need no key
    assert call(keyed, 'GET', '/health').status_code == 200 and call(keyed, 'GET', '/ready').status_code == 200
    assert 'samo_rate_limited_total 1.0' in call(keyed, 'GET', '/metrics').text
    assert KEYS[0] not in keyed.log() and 'key-two' not in keyed.log()


# ---------------------------------------------------------------- the command line

def test_serve_cli_errors(tmp_path):
    exe = [sys.executable, '-c', 'import sys; from samo_nb.cli import main; sys.exit(main())']
    bad = subprocess.run(exe + ['serve', '--model', str(tmp_path/'absent'), '--port', '1'], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert 'No samo model in' in bad.stderr
    helped = subprocess.run(exe + ['serve', '--help'], capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and '--workers' in helped.stdout


# ---------------------------------------------------------------- fuzzing

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

# schemathesis' pytest plugin (`from_fixture`) does not run under pytest 9, so each
# operation gets a Hypothesis test built from its strategy, valid and invalid data alike.
OPERATIONS = [('GET', '/health'), ('GET', '/ready'), ('GET', '/metrics'), ('POST', '/v1/emotions'), ('POST', '/v1/journal')]
FUZZ_EXAMPLES = int(os.environ.get('SAMO_FUZZ_EXAMPLES', 30))


@pytest.fixture(scope='module')
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + '/openapi.json')


FUZZ_CASES = [pytest.param(m, p, mode, id=f'{m} {p} {name}') for m, p in OPERATIONS
              for mode, name in [(GenerationMode.POSITIVE, 'valid'), (GenerationMode.NEGATIVE, 'invalid')]
              if m == 'POST' or mode == GenerationMode.POSITIVE]  # routes without parameters have no invalid input


@pytest.mark.parametrize('method, path, mode', FUZZ_CASES)
def test_fuzz_no_server_errors(server, api_schema, method, path, mode):
    "schemathesis, from the app's own OpenAPI schema: whatever it sends, no 5xx, and every 4xx is a JSON error."
    strategy = api_schema[path][method].as_strategy(generation_mode=mode)

    @given(strategy)
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        r = case.call(base_url=server.url, timeout=60)
        assert r.status_code < 500, (r.status_code, r.text[:300], case.as_curl_command())
        if r.status_code >= 400: assert set(r.json()) == {'error', 'detail'}, r.text[:300]
        elif mode == GenerationMode.POSITIVE and path == '/v1/emotions':
            assert r.status_code == 200 and r.json()['results'], r.text[:300]

    fuzz()
    assert_healthy(server)  # and the server is well after what it was sent


# ---------------------------------------------------------------- load

def test_load_small(server):
    "A short burst of single-text requests at concurrency 16: no errors, and forward passes that held several requests."
    before = batch_histogram(server)
    result = load_test(server.url, 200, 16)
    assert result['errors'] == 0, result['first_errors']
    after = batch_histogram(server)
    passes, texts = after['count'] - before['count'], after['sum'] - before['sum']
    batched = passes - (after['le=1.0'] - before['le=1.0'])  # passes of more than one text: several requests each
    assert texts == 200 and batched > 0 and passes < 200, (passes, texts, batched)


@pytest.mark.slow
def test_load_2000_twice(model):
    "The issue's load test, on a fresh server: 2,000 single-text requests at concurrency 16, twice; 0 errors, no memory growth."
    with running_server(model, env=LIMITS) as server:
        load_test(server.url, 64, 16)  # warm-up
        first = load_test(server.url, 2000, 16); after_first = process_memory(server.pid)
        second = load_test(server.url, 2000, 16); after_second = process_memory(server.pid)
        assert first['errors'] == 0 and second['errors'] == 0, (first['first_errors'], second['first_errors'])
        assert after_second['rss_mib'] - after_first['rss_mib'] < 32, (after_first, after_second)
        assert call(server, 'GET', '/health').status_code == 200
