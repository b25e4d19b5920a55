# The two set-up commands in the README are `make demo` and `make test`.
# Each creates .venv (if needed) with the machine's python3 and installs the project into it.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-main: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(VENV)/.installed-main
	$(VENV)/bin/switchboard demo

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.installed-test
	$(VENV)/bin/python benchmarks/audio_path.py
