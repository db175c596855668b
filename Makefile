# samo-nb: `make run` sets everything up and runs the quick pipeline; `make test` sets
# everything up and runs the checks CI runs; `make test-slow` runs the slow checks CI leaves
# out; `make lab` opens JupyterLab on the notebooks. All are safe to repeat.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg espeak-ng sox wordnet-base wordnet-sense-index postgresql
SHARED_DATA := $(abspath ../shared/data/goemotions)
# The shared GoEmotions folder when it is there, else the Hugging Face hub.
export SAMO_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/train.tsv),$(SHARED_DATA),hub)
export MPLBACKEND := Agg
PROFILE ?= quick
NLTK_WORDNET := data/nltk_data/corpora/wordnet
# make setup installs every extra: each `<name>_requirements` line of settings.ini is the extra
# <name> (setup.py). Adding an extra is that one line, plus its packages' pins in constraints.txt.
EXTRAS := $(shell sed -n 's/^\([a-z0-9]*\)_requirements *=.*/\1/p' settings.ini | grep -vx pip | paste -sd, -)
# The project's Jupyter kernel: this venv's Python, registered inside the venv.
KERNEL := samo-nb
KERNEL_SPEC := $(VENV)/share/jupyter/kernels/$(KERNEL)/kernel.json

.PHONY: setup run test test-slow lab student system-packages readme clean-check nbtest pytest
setup: system-packages $(VENV)/.installed $(NLTK_WORDNET)/lexnames

# apt packages only where apt exists (Debian, Ubuntu, Colab) and only those missing.
system-packages:
	@if command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    echo "Installing system packages: $$missing"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	  fi; \
	else echo "apt-get not found: install $(APT_PACKAGES) with your package manager"; fi

$(VENV)/.installed: settings.ini setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $@

# WordNet 3.0 for NLTK, from Debian's files plus the lexnames file Debian lacks.
$(NLTK_WORDNET)/lexnames: data/wordnet/lexnames
	@if [ -d /usr/share/wordnet ]; then \
	  mkdir -p $(NLTK_WORDNET) && \
	  cp /usr/share/wordnet/data.* /usr/share/wordnet/index.* /usr/share/wordnet/*.exc $(NLTK_WORDNET)/ && \
	  cp data/wordnet/lexnames $(NLTK_WORDNET)/lexnames; \
	else echo "WordNet not found in /usr/share/wordnet: augmentation will ask for it"; fi

run: setup
	$(BIN)/samo run --profile $(PROFILE)

test: setup clean-check nbtest pytest

# nbdev_clean and nbdev_export must change nothing: notebooks are committed clean and
# the package matches them.
clean-check:
	@sum() { find nbs samo_nb -type f -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' | sort | xargs sha1sum | sha1sum; }; \
	before=$$(sum); $(BIN)/nbdev_clean && $(BIN)/nbdev_export; after=$$(sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev_clean / nbdev_export changed files; run them and commit:"; git status --short nbs samo_nb; exit 1; fi

nbtest:
	# one thread per notebook: two workers on two cores, no oversubscription
	OMP_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2 --timing

# pytest deselects @pytest.mark.slow (pyproject.toml addopts); nbdev_test skips `#| slow` cells.
pytest:
	$(BIN)/pytest -q -rs tests

# CI (.ci/run) runs `make test`, which leaves the slow checks out; `make test-slow` runs every one
# of them, so nothing flagged slow goes unrun: the pytest tests marked slow and, in each notebook
# holding `#| slow` cells, the whole notebook with those cells (today: the 2,000-request load test
# in tests/test_serve.py, the million-row memory check in tests/test_score.py, and half an hour
# of audio through both Whisper backends in 08_asr).
test-slow: setup
	$(BIN)/pytest -q -rs -m slow tests
	for nb in $$(grep -lE '"#\| *slow' nbs/*.ipynb); do OMP_NUM_THREADS=1 $(BIN)/nbdev_test --path $$nb --flags slow --timing || exit 1; done

# The distilled student (README, Results): the 6-block teacher of the full profile, a 3-block student
# on its cached probabilities (params/distill.yaml), then that student cut to 1,024 feed-forward
# neurons per block and distilled again from it (the best student measured: reports/README.md);
# about 90 to 120 minutes on a 2-core CPU. A step's model counts as made once its int8 export,
# written last, is there, so an interrupted step reruns and a finished one is kept.
student: models/student-f1024/model.int8.onnx
models/teacher/model.int8.onnx: | setup
	$(BIN)/samo train --profile full --out models/teacher
models/student/model.int8.onnx: models/teacher/model.int8.onnx
	$(BIN)/samo distill --teacher models/teacher --out models/student
models/student-f1024/model.int8.onnx: models/student/model.int8.onnx
	$(BIN)/samo distill --teacher models/teacher --ffn 1024 -p init=encoder -p encoder=models/student --out models/student-f1024

# JupyterLab on nbs/ (notebooks run with nbs/ as working directory, as under nbdev_test) with the
# project's kernel; it prints the URL to open. LAB_ARGS passes options, e.g. LAB_ARGS='--port 8890'.
$(KERNEL_SPEC): $(VENV)/.installed
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (samo-nb)"

lab: setup $(KERNEL_SPEC)
	$(BIN)/jupyter lab --notebook-dir nbs --no-browser --MappingKernelManager.default_kernel_name=$(KERNEL) \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)  # root: containers and Colab

# README.md is generated from nbs/index.ipynb (quarto is not installable here).
readme: setup
	$(BIN)/jupyter nbconvert --to markdown --execute --no-input nbs/index.ipynb --output-dir . --output README
