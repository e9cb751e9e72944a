# make demo: set up .venv and execute the blog-post tutorial notebook on the embedded SQLite default.
# make test: set up .venv and run ruff, mypy, the test suite (on two cores; then, by itself, the
#            test that stops the PostgreSQL server), the notebooks under nbval and the browser
#            tests (tests/e2e) when chromium is on PATH (what CI runs).
# make check: while developing, lint and the fast tests (no reliability suite, no kernels, no
#            PostgreSQL, property tests at 20 examples) in under a minute.
# make lab:  open JupyterLab on notebooks/.  make notebooks: refresh the notebooks' saved outputs.
# make e2e:  the browser tests alone (JupyterLab in Debian's chromium; make test runs them too).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test check e2e lint lab notebooks bench bench-stream bench-inspector clean

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
	$(BIN)/pytest -n 2 -m "not alone"
	$(BIN)/pytest -m alone
	$(BIN)/pytest --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg \
		-p no:cacheprovider notebooks/
	@if command -v chromium >/dev/null 2>&1; then $(MAKE) --no-print-directory e2e; else \
		echo "make test: browser tests (tests/e2e) SKIPPED: no chromium on PATH (apt-get install chromium)"; fi

check: lint
	WFNB_TEST_POSTGRES_URL= WFNB_QUICK=1 $(BIN)/pytest -q -x -p no:cacheprovider -n auto \
		-m "not slow and not kernel" \
		--ignore=tests/reliability tests

e2e: $(INSTALLED)
	$(BIN)/pytest -m browser -p no:cacheprovider tests/e2e

lab: $(INSTALLED)
	$(BIN)/jupyter lab --notebook-dir=notebooks

notebooks: $(INSTALLED)
	$(BIN)/python notebooks/execute.py --save

$(VENV)/.bench-installed: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,bench]'
	@touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/steps.py
	$(BIN)/python bench/ask.py
	$(BIN)/python bench/stream.py

bench-stream: $(INSTALLED)
	$(BIN)/python bench/stream.py

bench-inspector: $(INSTALLED)
	$(BIN)/python bench/inspector.py

clean:
	rm -rf $(VENV) tmp test-output .pytest_cache .mypy_cache .ruff_cache .hypothesis
