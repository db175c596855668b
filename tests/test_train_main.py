"""`python -m samo_nb.train` (the `accelerate launch` entry) builds the same `TrainConfig` as the 04_train notebook
from a profile and `-p` overrides: one merge (`samo_nb.runner.notebook_parameters`), the notebook's values accepted.
The training itself is replaced by a stand-in that returns the config, so no model is trained here."""
import pytest

import samo_nb.data
import samo_nb.train
from samo_nb.core import SamoError
from samo_nb.runner import load_profile, notebook_parameters


@pytest.fixture
def config_of(monkeypatch, tmp_path):
    "Run `samo_nb.train.main` with these arguments; return the `TrainConfig` it would train with."
    monkeypatch.setattr(samo_nb.train, 'train', lambda config, data, out: config)
    monkeypatch.setattr(samo_nb.data, 'load_goemotions', lambda source=None: None)
    return lambda *args: samo_nb.train.main(['--out', str(tmp_path/'model'), *args])


def test_profile_section_and_overrides(config_of):
    quick = notebook_parameters(load_profile('quick'), '04_train')
    config = config_of('--profile', 'quick')
    assert (config.loss, config.lr, config.epochs, config.train_rows) == (quick['loss'], quick['lr'], quick['epochs'], quick['train_rows'])
    config = config_of('--profile', 'quick', '-p', 'epochs=1', '-p', 'lr=2e-5')
    assert (config.epochs, config.lr, config.loss) == (1, 2e-5, quick['loss'])


def test_zero_means_all_as_in_the_notebook(config_of):
    config = config_of('--profile', 'quick', '-p', 'layers=0', '-p', 'train_rows=0', '-p', 'dev_rows=0')
    assert (config.layers, config.train_rows, config.dev_rows) == (None, None, None)
    assert config_of('--profile', 'quick', '-p', 'layers=3').layers == 3


def test_bad_values_name_the_setting(config_of):
    with pytest.raises(SamoError, match='layers=-1'): config_of('--profile', 'quick', '-p', 'layers=-1')
    with pytest.raises(SamoError, match="Unknown loss 'hinge'"): config_of('--profile', 'quick', '-p', 'loss=hinge')
