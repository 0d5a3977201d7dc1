# Two commands do everything on a fresh machine (see README):
#   make demo   install, then generate a small Push dataset, train BC, evaluate headless
#   make test   install, then run the test suite
# GPU machines: make demo TORCH_SPEC=torch   (PyPI's default Linux wheel is the CUDA build)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo_run
DEMOS_PER_OPERATOR ?= 20
TRAIN_STEPS ?= 3000
EVAL_PROTOCOL ?= cpu
EVAL_WORKERS ?= 2
PY := $(VENV)/bin/python
STAMP := $(VENV)/.polymimic-installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_system_deps.sh
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/polymimic data generate --out $(DEMO_DIR)/push.hdf5 \
		--demos-per-operator $(DEMOS_PER_OPERATOR) --workers 2
	$(VENV)/bin/polymimic train dataset=$(CURDIR)/$(DEMO_DIR)/push.hdf5 policy=bc_mlp \
		train.num_steps=$(TRAIN_STEPS) hydra.run.dir=$(DEMO_DIR)/train
	$(VENV)/bin/polymimic eval --checkpoint $(DEMO_DIR)/train/checkpoints/last \
		--protocol $(EVAL_PROTOCOL) --workers $(EVAL_WORKERS) --video-episodes 4 \
		--out-dir $(DEMO_DIR)/eval --overwrite \
		--dataset $(DEMO_DIR)/push.hdf5

# robomimic 0.3.0 is a test-time cross-check of the file format, never a runtime
# dependency: --no-deps because its torchvision pin cannot be met beside CPU torch, and
# its dataset module needs only these three extra packages (DESIGN.md).
ROBOMIMIC_STAMP := $(VENV)/.robomimic-installed
$(ROBOMIMIC_STAMP): $(STAMP)
	$(PY) -m pip install -q --no-deps robomimic==0.3.0
	$(PY) -m pip install -q six termcolor psutil
	touch $(ROBOMIMIC_STAMP)

# The Minari export is an optional extra for users; the tests exercise it.
MINARI_STAMP := $(VENV)/.minari-installed
$(MINARI_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,minari]"
	touch $(MINARI_STAMP)

# The leaderboard server's dependencies (SQLAlchemy, Alembic, Starlette, uvicorn) are an
# extra too: researchers who only train and evaluate do not need them; the tests do, and
# its browser test drives Debian's chromium through Selenium (installed here, not for demo).
LEADERBOARD_STAMP := $(VENV)/.leaderboard-installed
$(LEADERBOARD_STAMP): $(STAMP)
	bash scripts/install_system_deps.sh --browser
	$(PY) -m pip install -q -e ".[dev,leaderboard]"
	touch $(LEADERBOARD_STAMP)

test: install $(ROBOMIMIC_STAMP) $(MINARI_STAMP) $(LEADERBOARD_STAMP)
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts

clean:
	rm -rf $(DEMO_DIR) outputs multirun
