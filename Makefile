# ganjax: `make demo` trains the DCGAN on the embedded MNIST digits, evaluating it against held-out
# digits as it goes; `make test` runs the tests. Both create a virtual environment in .venv and
# install ganjax into it first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/dcgan_mnist
FEATURES ?= features/mnist_5k
PYTEST_ARGS ?=

.PHONY: install demo test sample bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The classifier whose features give "classifier FID" on the digits (about a minute, once).
$(FEATURES)/classifier.msgpack: | install
	$(VENV)/bin/ganjax train-features --dataset mnist_5k --out $(FEATURES)

demo: install $(FEATURES)/classifier.msgpack
	$(VENV)/bin/ganjax train --config configs/dcgan_mnist.py --workdir $(WORKDIR) \
	    --config.eval.every=1000 --config.eval.num_samples=500 \
	    --config.eval.features_dir=$(FEATURES)
	$(VENV)/bin/ganjax sample --workdir $(WORKDIR) --num 100 --out $(WORKDIR)/samples_final.png
	$(VENV)/bin/ganjax eval --workdir $(WORKDIR) --num 500

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

bench: install
	$(PY) benchmarks/throughput.py --config configs/dcgan_mnist.py --batch 64

clean:
	rm -rf $(VENV) runs features
