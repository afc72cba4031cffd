# Two commands for readers: `make book` (the website) and `make test` (unit tests + every
# notebook under nbval). Both create .venv on first use. `.ci/run` runs them and the rest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed
# PyTorch is a test dependency (the outside oracle for ported weights and the
# second Keras backend). Its CPU build keeps the install small; a plain
# `pip install torch` on Linux pulls several GB of CUDA packages. One retry only: where the
# CPU index cannot be reached (a mirror or a local wheel serves torch instead), pip's default
# five retries per package cost minutes.
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# nbval trains the chapters' runs afresh here, so that it checks the code as it is now.
NBVAL_RUNS := _build/nbval-runs

# TensorFlow's C++ log lines are noise in notebooks and test output.
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help venv test test-units test-notebooks test-oldest rehearse book test-site notebooks bench clean

help:
	@echo "make book         build the website into _build/html from the committed notebooks"
	@echo "make test         unit tests (TensorFlow and PyTorch backends) + nbval on every notebook"
	@echo "make test-oldest  unit tests on the oldest supported TensorFlow and Keras (Colab's)"
	@echo "make rehearse     chapters 05-09 under the gpu profile on Imagenette-sized data (a rehearsal)"
	@echo "make test-site    the built website in headless Chromium (after make book)"
	@echo "make notebooks    re-execute every notebook in place (cpu profile) to refresh its outputs"
	@echo "make bench        speed benchmarks (benchmarks/), results in benchmarks/results/"

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --retries 1 "$(TORCH)" --extra-index-url $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(OLDEST_STAMP): requirements-oldest.txt pyproject.toml
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST)/bin/python -m pip install --quiet -r requirements-oldest.txt
	$(OLDEST)/bin/python -m pip install --quiet --no-deps -e .
	touch $(OLDEST_STAMP)

test: test-units test-notebooks

test-units: venv
	ALEXNET_TUT_PROFILE=smoke $(BIN)/python -m pytest tests --ignore=tests/rehearsal --ignore=tests/site \
		--durations=10
	KERAS_BACKEND=torch $(BIN)/python -m pytest tests/test_layers.py tests/test_models.py \
		tests/test_costs.py tests/test_speedups.py tests/test_pretrained.py tests/test_viz.py
	# The package turns TensorFlow's oneDNN kernels on (devices.choose_cpu_kernels); the
	# numerical tests run once more with them off, as on a CPU where a user turned them off.
	TF_ENABLE_ONEDNN_OPTS=0 ALEXNET_TUT_PROFILE=smoke $(BIN)/python -m pytest tests/test_layers.py \
		tests/test_speedups.py tests/test_models.py tests/test_solver.py tests/test_devices.py

# The committed notebooks were executed with the cpu profile (`make notebooks`); nbval
# executes them again, offline, and compares every output it can.
test-notebooks: venv
	rm -rf $(NBVAL_RUNS)
	ALEXNET_TUT_PROFILE=cpu ALEXNET_TUT_OFFLINE=1 ALEXNET_TUT_RUNS=$(abspath $(NBVAL_RUNS)) \
		PYTHONPATH=tests $(BIN)/python -m pytest -p no:python -p nbval_plugin --nbval \
		--nbval-current-env --nbval-sanitize-with tests/sanitize.cfg $(NOTEBOOKS)

# The oldest supported versions (requirements-oldest.txt): the unit tests, without the
# slow multi-process ones, which exercise TensorFlow's distribution code rather than ours.
test-oldest: $(OLDEST_STAMP)
	ALEXNET_TUT_PROFILE=smoke $(OLDEST)/bin/python -m pytest tests -m "not slow" --durations=10 \
		--ignore=tests/rehearsal --ignore=tests/site

# The reader's Colab run (issue "the reader's real run"), rehearsed on this CPU: Imagenette-shaped
# data and torchvision-format weights served by a mirror on 127.0.0.1. About ten minutes.
rehearse: venv
	PYTHONPATH=tests/rehearsal $(BIN)/python -m pytest tests/rehearsal -q -s

book: venv
	$(BIN)/jupyter-book build . -W --keep-going

# The built website in a real browser: Debian's chromium, installed when missing.
test-site: venv
	bash tests/site/install_chromium.sh
	$(BIN)/python -m pytest tests/site -q

# Fresh runs, so that the committed outputs come from runs trained by the current code.
notebooks: venv
	rm -rf runs/*/cpu
	cd notebooks && for nb in $(notdir $(NOTEBOOKS)); do \
		ALEXNET_TUT_PROFILE=cpu ALEXNET_TUT_OFFLINE=1 ../$(BIN)/jupyter nbconvert --to notebook \
			--execute --inplace --ExecutePreprocessor.timeout=1800 $$nb || exit 1; done

bench: venv
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_lrn.py
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf _build
