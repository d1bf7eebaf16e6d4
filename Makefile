# Everything a fresh Linux machine with Python 3 and make needs, in the project's own files.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Debian packages the sandbox and the report test use; installed when we are root with apt.
SYSTEM_PACKAGES ?= bubblewrap chromium

.PHONY: setup system demo test test-fast bench bench-sandbox bench-throughput bench-assignment clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# .[dev] brings one TensorFlow (`tensorflow`, for Keras 3 and tf_keras). A venv made
	@# before TensorFlow became an extra also holds tensorflow-cpu over the same files:
	@# it still works, and removing either would delete files the other needs.
	@$(PY) -m pip list 2>/dev/null | grep -qi '^tensorflow[-_]cpu ' && \
		echo "note: $(VENV) also holds tensorflow-cpu from an earlier set-up; 'make clean setup' gives one TensorFlow" || true
	rm -f $(VENV)/.installed-*
	touch $@

# Best effort: a machine without root or apt still grades, at a weaker isolation level
# that the output names (see the README's security section).
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing system packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; } || \
		echo "warning: could not install$$missing; grading will use a weaker sandbox"; \
	else \
		echo "note: not root or no apt-get; install$$missing yourself for full isolation"; \
	fi

demo: setup
	$(VENV)/bin/grader grade assignments/conv_bn/samples --assignment conv_bn --audience student

# The suite runs on TEST_JOBS pytest-xdist workers, a whole test file per worker at a time
# (module fixtures are built once, as in a serial run), expensive files handed out first
# (tests/conftest.py). 2 matches CI's two cores; TEST_JOBS=0 runs it serially in one process.
TEST_JOBS ?= 2

test: setup
	$(VENV)/bin/pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder --durations=25

test-fast: setup
	$(VENV)/bin/pytest -m "not slow"

# Not part of `make test` (a smoke run of each benchmark is). Needs PyPI once, for nbgrader.
bench: setup
	$(PY) bench/compare.py

bench-sandbox: setup
	$(PY) bench/sandbox_bench.py

bench-throughput: setup
	$(PY) bench/throughput.py

bench-assignment: setup
	$(PY) bench/assignment_bench.py --notebook

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
