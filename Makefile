# Two commands matter: `make run` (try the product) and `make test` (everything CI checks).
CACHE ?= $(HOME)/.cache/comfyui-mcp-bridge
export MCP_BRIDGE_CACHE := $(CACHE)
PY := $(CACHE)/venv/bin/python
PYTEST_ARGS ?=

.PHONY: install run cluster test lint unit tiny-models integration lock clean-cache

install:
	bash testbed/install.sh

run: install
	$(PY) -m testbed.server

# Two CPU ComfyUIs behind HAProxy on loopback: one MCP URL for several instances.
cluster: install
	$(PY) -m testbed.cluster

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(CACHE)/venv/bin/comfy --skip-prompt --no-enable-telemetry node validate

unit:
	$(PY) -m pytest -m "not integration and not tiny_models" $(PYTEST_ARGS)

# The tiny model generator's own tests (575 MB written twice); `make test` runs them once with the rest.
tiny-models:
	$(PY) -m pytest -m tiny_models $(PYTEST_ARGS)

integration:
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Regenerate the environment lock after changing requirements (then commit testbed/constraints.txt).
lock:
	{ echo "# Lock for the test/dev environment (pip freeze of a full install.sh run). Regenerate: make lock"; \
	  $(PY) -m pip freeze --exclude-editable; } > testbed/constraints.txt

clean-cache:
	rm -rf $(CACHE)
