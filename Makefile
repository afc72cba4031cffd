# Two commands for readers: `make book` (the website) and `make test` (unit
# tests + every notebook under nbval). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PyTorch is a test dependency (the outside oracle for ported weights and the
# second Keras backend). Its CPU build keeps the install small; a plain
# `pip install torch` on Linux pulls several GB of CUDA packages.
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

# TensorFlow's C++ log lines are noise in notebooks and test output.
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help venv test test-units test-notebooks book notebooks bench clean

help:
	@echo "make book       build the website into _build/html (executes every notebook)"
	@echo "make test       unit tests (TensorFlow and PyTorch backends) + nbval on every notebook"
	@echo "make notebooks  re-execute every notebook in place to refresh its committed outputs"
	@echo "make bench      speed benchmarks (benchmarks/), results in benchmarks/results/"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" --extra-index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: test-units test-notebooks

test-units: venv
	ALEXNET_TUT_PROFILE=smoke $(BIN)/python -m pytest tests
	KERAS_BACKEND=torch $(BIN)/python -m pytest tests/test_layers.py tests/test_models.py \
		tests/test_pretrained.py tests/test_viz.py

test-notebooks: venv
	ALEXNET_TUT_PROFILE=smoke PYTHONPATH=tests $(BIN)/python -m pytest -p no:python \
		-p nbval_plugin --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg \
		$(NOTEBOOKS)

book: venv
	$(BIN)/jupyter-book build . -W --keep-going

# The smoke runs the chapters save in runs/ are removed first, so that the
# committed outputs come from runs trained by the current code.
notebooks: venv
	rm -rf runs/*/smoke runs/*/crash-demo
	cd notebooks && for nb in $(notdir $(NOTEBOOKS)); do \
		ALEXNET_TUT_PROFILE=smoke ../$(BIN)/jupyter nbconvert --to notebook --execute \
			--inplace --ExecutePreprocessor.timeout=1200 $$nb || exit 1; done

bench: venv
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_lrn.py
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf _build
