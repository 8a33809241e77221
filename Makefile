# Every target installs what it needs first, so each works on a fresh machine.
UV_VERSION := 0.13.9
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: install system-deps control-plane browser run test test-unit test-dagster test-e2e test-cluster lint format typecheck dev validate golden bench-render bench-deploy bench-migrate bench-sensor bench-backup bench-load clean

install:  ## the pinned environment from uv.lock into .venv
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen

$(DAGSTER_HOME)/dagster.yaml:  ## only when DAGSTER_HOME points elsewhere
	mkdir -p $(DAGSTER_HOME) && touch $@

# The project's CLI straight from the venv: make's SIGTERM then reaches it (through `uv run` it would not).
CLI := $(CURDIR)/.venv/bin/llm-cost-ops-ops
DEV_HOST ?= 127.0.0.1
DEV_PORT ?= 3000

run: install $(DAGSTER_HOME)/dagster.yaml  ## the main job on its embedded default: plan the dev deploy (render, check, waves, diff; no cluster), a run of the instance ending with the plan
	$(CLI) run deploy dev --config jobs/deploy/dev.plan.yaml

# Debian packages the suite needs (root: apt-get): the PostgreSQL server binaries for the throwaway
# servers the fixtures start, and Chromium for the UI browser test. Only what is missing is installed.
APT_PACKAGES := postgresql postgresql-client chromium
system-deps:  ## Debian packages: postgresql (throwaway servers), chromium (browser test); needs root
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v pg_dump >/dev/null || missing="$$missing postgresql-client"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages (--no-install-recommends):$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

browser: system-deps  ## headless Chromium for the UI browser test (tests/e2e/test_ui_browser.py)

control-plane: install  ## kube-apiserver, controller-manager, scheduler, etcd and KWOK from tests/control_plane/go.mod into ~/.cache (first build only)
	$(RUN) python -m tests.control_plane.binaries

test: install system-deps control-plane  ## the whole test suite, the real control plane tier included
	$(RUN) pytest

test-unit: install
	$(RUN) pytest -m unit

test-dagster: install
	$(RUN) pytest -m dagster

test-e2e: install system-deps control-plane
	$(RUN) pytest -m e2e

test-cluster: install control-plane  ## only the tier on the real control plane
	$(RUN) pytest -m cluster

lint: install  ## ruff, and the import contracts in pyproject.toml (libraries free of Dagster, layers one-way)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

format: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: install
	$(RUN) mypy llm_cost_ops_ops

validate: install  ## dg check defs: every definition loads (Dagster's validation command)
	$(RUN) dg check defs

# After a change meant to alter the bundles: re-render every environment's overlay into
# manifests/golden/<env>.yaml (tests/unit/test_golden_renders.py compares against them), then
# review and commit the golden diff with the change.
golden: install  ## re-render every overlay into manifests/golden/<env>.yaml (on purpose; review the diff)
	@envs=$$($(RUN) python -c 'import pathlib; from llm_cost_ops_ops.environments import load_environments as load; print(*load(pathlib.Path("environments.yaml")))') \
	  && [ -n "$$envs" ] || { echo "golden: could not list the environments of environments.yaml" >&2; exit 1; }; \
	for env in $$envs; do \
	  out=manifests/golden/$$env.yaml; \
	  $(RUN) python -m llm_cost_ops_ops.bundles.renderers $$env --renderer kustomize > $$out.tmp \
	    && mv $$out.tmp $$out || { rm -f $$out.tmp; exit 1; }; \
	done

# `dagster dev` under a launcher (llm_cost_ops_ops/cli/dev.py): Ctrl-C or SIGTERM stops it with every
# process it started within a few seconds.
dev: install $(DAGSTER_HOME)/dagster.yaml  ## the Dagster UI on http://127.0.0.1:3000 (says first what this instance operates: LLM_COST_OPS_OPS_OPERATES)
	@$(RUN) python -m llm_cost_ops_ops.operator_declaration
	$(CLI) dev -w workspace.yaml --host $(DEV_HOST) --port $(DEV_PORT)

bench-render: install  ## render + checks of all environments vs bare kubectl kustomize
	$(RUN) python benchmarks/bench_render.py

bench-deploy: install control-plane  ## prod bundle on the real control plane: first deploy and no-op redeploy vs kubectl apply --server-side + rollout status
	$(RUN) python benchmarks/bench_deploy.py

bench-sensor: install control-plane  ## rollout sensor tick over 3 environments x 100 Deployments on the real control plane vs per-object polling
	$(RUN) python benchmarks/bench_sensor.py

bench-backup: install  ## backup and verified restore vs pgBackRest (installed if absent, as root) and the pg_dump / pg_restore -j2 floors, same S3 (BENCH_BACKUP_MB, default 256; 1024 for the README figures)
	$(RUN) python benchmarks/bench_backup.py

bench-migrate: install  ## platform schema into empty databases: migration runner vs psql -f (LLM_COST_OPS_OPS_TEST_DSN or a throwaway server)
	$(RUN) python benchmarks/bench_migrate.py

clean:
	rm -rf .venv .pytest_cache .ruff_cache .mypy_cache

bench-load: install  ## code location load vs bare import dagster, validate CLI, webserver start to first GraphQL answer
	$(RUN) python benchmarks/bench_load.py
