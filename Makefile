# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-slow lab clean

$(BIN)/workbench: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

install: $(BIN)/workbench

demo: install
	$(BIN)/workbench demo

test: install
	$(BIN)/ruff check --quiet src tests bench tools   # E,F,W,I,B,UP,RUF at 120 columns (pyproject.toml)
	$(BIN)/ruff format --check --quiet src tests bench tools
	$(BIN)/mypy   # src/workbench, as configured in pyproject.toml
	$(BIN)/python -m pytest -q -m 'not slow'   # about 10 min on 2 idle cores

test-slow: install  # the suites marked slow: README blocks, notebooks, exports, Spark, PostgreSQL, MLflow servers
	$(BIN)/python -m pytest -q -m slow

# JupyterLab refuses to start as root (containers, CI) unless told --allow-root; only root gets it
ALLOW_ROOT = $$([ "$$(id -u)" = 0 ] && echo --allow-root)

lab: install  # JupyterLab on the notebooks, with the kernel of this venv (its `python3`); saves strip outputs
	$(BIN)/jupyter lab --ip=127.0.0.1 --notebook-dir=notebooks --config=jupyter_server_config.py $(ALLOW_ROOT)

clean:
	rm -rf $(VENV) .venv-watson-sdk data/workbench mlruns
