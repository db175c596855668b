"""Fixtures shared by the CLI and API tests."""
import pytest

from samo_nb.testing import smoke_model


@pytest.fixture(scope='session')
def model(tmp_path_factory):
    "A tiny emotion model trained in-process on synthetic cue-word data (no downloads); tests only read it."
    return smoke_model(tmp_path_factory.mktemp('smoke'))[0]
