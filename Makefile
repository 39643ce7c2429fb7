# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need:
# a virtual environment with the project, ZooKeeper from Debian's package, the example model.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
ZK_JAR := /usr/share/java/zookeeper.jar
DGA_MODEL := examples/dga/payload/model.onnx
PYTEST_ARGS ?=
# Test processes: most tests wait on real servers and processes, so a few run side by side even on
# 2 cores; a file's tests stay in one process (--dist loadfile). TEST_WORKERS=0 runs them in this one.
TEST_WORKERS ?= 3

.PHONY: all install system-packages zookeeper wrk model demo test bench clean

all: test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[examples,test]'
	touch $@

install: $(VENV)/.installed

# Debian packages the tests start themselves (README.md, "Testing"): ZooKeeper, PostgreSQL, mosquitto
# and Chromium with its driver for the web console's browser tests. Installed in one apt run,
# only when one of them is missing.
DEBIAN_PACKAGES := zookeeper postgresql mosquitto chromium chromium-driver
system-packages:
	@missing=""; \
	[ -f $(ZK_JAR) ] && command -v java >/dev/null 2>&1 || missing="$$missing zookeeper"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing from Debian's packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# ZooKeeper alone is enough for the demo
zookeeper:
	@if [ ! -f $(ZK_JAR) ] || ! command -v java >/dev/null 2>&1; then \
	  echo "Installing ZooKeeper from Debian's package"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null; \
	fi

# the benchmarks' load generator (without it they fall back to a Python client, and say so)
wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  echo "Installing wrk from Debian's package"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || \
	  { $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
	  echo "wrk could not be installed: the benchmarks use their Python load generator"; \
	fi

$(DGA_MODEL): examples/dga/train.py $(VENV)/.installed
	$(PY) examples/dga/train.py --out $@

model: $(DGA_MODEL)

demo: install zookeeper model
	$(PY) examples/demo.py

test: install system-packages model
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: install zookeeper wrk model
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench-venv .run $(DGA_MODEL) .pytest_cache
