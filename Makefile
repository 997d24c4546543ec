# ganjax: `make demo` trains the DCGAN on the embedded MNIST digits; `make test` runs the tests.
# Both create a virtual environment in .venv and install ganjax into it first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/dcgan_mnist
PYTEST_ARGS ?=

.PHONY: install demo test sample bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(VENV)/bin/ganjax train --config configs/dcgan_mnist.py --workdir $(WORKDIR)
	$(VENV)/bin/ganjax sample --workdir $(WORKDIR) --num 100 --out $(WORKDIR)/samples_final.png

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

bench: install
	$(PY) benchmarks/throughput.py --config configs/dcgan_mnist.py --batch 64

clean:
	rm -rf $(VENV) runs
