# ganjax: `make demo` trains the DCGAN on the embedded MNIST digits, evaluating it against held-out
# digits as it goes; `make test` runs the tests. Both create a virtual environment in .venv and
# install ganjax into it first (`source .venv/bin/activate` then puts `ganjax` on the PATH).
# `make tensorboard` installs TensorBoard there too and shows every run under runs/.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/dcgan_mnist
FEATURES ?= features/mnist_5k
PYTEST_ARGS ?=
LOGDIR ?= runs
# pip shows the build backend's warnings even with --quiet; setuptools' "Editable installation"
# notice (about folders named like the package) is expected here, so it is filtered out.
PIP_EDITABLE := PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install --quiet -e

.PHONY: install demo test sample bench tensorboard clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PIP_EDITABLE) '.[test]'
	touch $@

$(VENV)/.tensorboard: $(VENV)/.installed
	$(PIP_EDITABLE) '.[test,tensorboard]'
	touch $@

# Loss curves, evaluations and sample grids of every run under $(LOGDIR), at http://localhost:6006.
tensorboard: $(VENV)/.tensorboard
	$(VENV)/bin/tensorboard --logdir $(LOGDIR)

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
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS) tests

bench: install
	$(PY) benchmarks/throughput.py --config configs/dcgan_mnist.py --batch 64

clean:
	rm -rf $(VENV) runs features
