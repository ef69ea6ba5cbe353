# Two commands do everything after `git clone`:
#   make repro   set up .venv, then run the whole pipeline (dvc repro) on the built-in data
#   make test    set up .venv, then run the whole test suite (what CI runs)
# and `make test-fast` runs the unit tests alone (no pipeline, sweep, PostgreSQL or torchrun), one
# pytest-xdist worker per core.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
# uv installs into $(VENV) (its default is .venv)
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
# the uv release that writes and reads uv.lock: pyproject.toml's [tool.uv] required-version
UV_VERSION := $(shell sed -n 's/^required-version = "==\([^"]*\)".*/\1/p' pyproject.toml)

.PHONY: setup lock repro claims sim2real repro-all test test-fast lint-imports ui dashboard
setup: $(VENV)/.installed

# Installs exactly the versions (and file hashes) of uv.lock: the package, its extras (test,
# dashboard) and dependency groups (the MobileNetV2 weights, uv, pip), and removes anything else.
# --locked stops with an error when uv.lock no longer matches pyproject.toml: run `make lock`.
# --compile-bytecode writes the .pyc files as pip did: without them every process (each dvc
# stage, sweep worker, torchrun rank) compiles torch's and mlflow's sources again on import
# when PYTHONDONTWRITEBYTECODE is set (30-50 s instead of 13 s here to import torch, mlflow, dvc).
$(VENV)/.installed: pyproject.toml uv.lock | $(BIN)/uv
	@$(BIN)/uv lock --check --offline --quiet || { echo >&2 "make setup: uv.lock no longer matches the dependencies in pyproject.toml; run 'make lock' and commit uv.lock"; exit 1; }
	$(BIN)/uv sync --locked --all-extras --compile-bytecode
	touch $@

# uv itself, bootstrapped with the venv's own pip (uv.lock pins the same version, so `uv sync` keeps it)
$(BIN)/uv:
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'

# Re-resolve uv.lock after editing pyproject.toml's dependencies (versions that still fit are
# kept); `make lock LOCK_FLAGS=--upgrade` moves every package to its newest release in range.
lock: | $(BIN)/uv
	$(BIN)/uv lock $(LOCK_FLAGS)

repro: setup
	dvc repro

# One of the papers' claims resolved on a 2-core CPU in about an hour and a half: DADL Table 5's ablation
# rows (dadl, hard_label, wo) trained with four seeds each; the report's Claims table then gives
# the differences with their 95% intervals (README, "Checking a claim").
claims: setup
	dvc exp run -S 'run=[dadl, hard_label, wo]' -S 'seeds=[0, 1, 2, 3]'

# Trained on the built-in data only, scored on real AFLW2000 (README, "Trained on synthetic, tested on real
# AFLW2000"): renders 5x the training faces at 160 px, trains sim2real_level and sim2real (seed SEED, default 0) and
# builds the report, whose real-AFLW2000 section scores them when params.yaml report.real_aflw2000 is present. Like
# `make claims`, it leaves its -S values in params.yaml (git checkout params.yaml undoes them).
SEED ?= 0
sim2real: setup
	dvc exp run -S data.synthetic.image_size=160 -S data.synthetic.train_per_subset=2000 \
	  -S 'run=[sim2real_level, sim2real]' -S 'seeds=[$(SEED)]'

# Every experiment of params.yaml (sets `run` to all of them, then reproduces)
repro-all: setup
	dvc exp run -S "run=[$$(python -c 'import yaml; print(",".join(yaml.safe_load(open("params.yaml"))["experiments"]))')]"

test: setup
	python -m pytest -q

test-fast: setup
	python -m pytest -q -m "not slow" -n auto

# the layer contracts of pyproject.toml ([tool.importlinter])
lint-imports: setup
	lint-imports

ui: setup
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1

# Optuna's web UI on a sweep's study, at http://127.0.0.1:8080: `make dashboard STUDY=alpha_beta`
# opens results/sweeps/alpha_beta/journal.log; `make dashboard STORAGE=postgresql+psycopg2://...`
# the database the workers were given with --storage (README, "Looking at a study in optuna-dashboard")
STUDY ?= alpha_beta
dashboard: setup
	@test -n "$(STORAGE)" -o -f results/sweeps/$(STUDY)/journal.log || { echo >&2 "make dashboard: no study at results/sweeps/$(STUDY)/journal.log; run python sweeps/$(STUDY).py, or give STORAGE=<database URL>"; exit 1; }
	optuna-dashboard $(or $(STORAGE),results/sweeps/$(STUDY)/journal.log) --host 127.0.0.1 --port 8080
