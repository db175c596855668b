"""Fixtures shared by the CLI and API tests."""
import pytest

from samo_nb.testing import smoke_model


@pytest.fixture(scope='session')
def model(tmp_path_factory):
    "A tiny emotion model trained in-process on synthetic cue-word data (no downloads); tests only read it."
    return smoke_model(tmp_path_factory.mktemp('smoke'))[0]


@pytest.fixture(scope='session')
def postgres_server():
    "A throwaway PostgreSQL server for the session (run as the postgres user when root); skipped, saying why, without one."
    from samo_nb.testing import postgres_bin_dir, temporary_postgres
    if postgres_bin_dir() is None:
        pytest.skip('PostgreSQL tests skipped: no PostgreSQL server programs (initdb, pg_ctl); apt-get install postgresql')
    with temporary_postgres(durable=False) as url: yield url


@pytest.fixture
def postgres_url(postgres_server):
    "The URL of a fresh, empty database on the session's PostgreSQL server."
    import uuid
    from sqlalchemy import create_engine
    name = f'test_{uuid.uuid4().hex[:12]}'
    engine = create_engine(postgres_server, isolation_level='AUTOCOMMIT')
    with engine.connect() as c: c.exec_driver_sql(f'CREATE DATABASE {name}')
    engine.dispose()
    return postgres_server.rsplit('/', 1)[0] + '/' + name
