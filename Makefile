# make demo: set up .venv and execute the blog-post tutorial notebook on the embedded SQLite default.
# make test: set up .venv and run ruff, mypy, the test suite and the notebooks under nbval.
# make lab:  open JupyterLab on notebooks/.  make notebooks: refresh the notebooks' saved outputs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test lint lab notebooks bench bench-stream clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "error: '$(PYTHON) -m venv' failed; on Debian: apt-get install python3-venv" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	@touch $@

demo: $(INSTALLED)
	$(BIN)/python examples/demo.py

lint: $(INSTALLED)
	$(BIN)/ruff check wfnb tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
	$(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
		-p no:cacheprovider notebooks/

lab: $(INSTALLED)
	$(BIN)/jupyter lab --notebook-dir=notebooks

notebooks: $(INSTALLED)
	$(BIN)/python notebooks/execute.py --save

$(VENV)/.bench-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,bench]'
	@touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/stream.py

bench-stream: $(INSTALLED)
	$(BIN)/python bench/stream.py

clean:
	rm -rf $(VENV) tmp .pytest_cache .mypy_cache .ruff_cache .hypothesis
