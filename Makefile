# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint bench fuzz soak coverage dist clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

# The demo needs the package alone (the simulator is part of it): no test or benchmark tools.
$(DEMO_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/bfxd demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check daemon tests bench
	$(BIN)/mypy
	$(BIN)/python -c "import bfxd.protocol, sys; assert 'trio' not in sys.modules, 'bfxd.protocol imports trio'"

coverage: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --cov=bfxd.protocol --cov-branch --cov-report=term-missing tests/protocol

bench: $(STAMP)
	$(BIN)/python -m bench

fuzz: $(STAMP)
	BFXD_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest -q -p no:cacheprovider -m fuzz tests

soak: $(STAMP)
	$(BIN)/python -m bench.soak

# sdist and wheel in dist/, built offline with the tools the test extra installs.
dist: $(STAMP)
	$(BIN)/python -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .hypothesis .coverage dist
