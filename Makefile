# The commands README.md promises. Everything runs from the project's own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SPECTRAL := npx --yes @stoplight/spectral-cli@6
RULESET ?= ../shared/conformance/nl-api-design-rules.spectral.yaml

.PHONY: run test test-fast test-dates fuzz lint openapi install clean faults load bench swagger-ui lock

# Exact versions (with hashes) from the lock file; pyproject.toml keeps the compatible ranges (`make lock`).
$(BIN)/risk-register: pyproject.toml requirements-dev.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(BIN)/risk-register

# make run PORT=8001 to serve elsewhere. The port is checked before the demo secrets are issued again.
PORT ?= 8000
run: install
	@$(BIN)/risk-register serve --bind 127.0.0.1:$(PORT) --check
	$(BIN)/risk-register demo --port $(PORT)
	$(BIN)/risk-register serve --bind 127.0.0.1:$(PORT) --workers 2

test: install
	$(BIN)/pytest

# Everything but the tests marked slow (real servers, browsers, fuzzing, attack worlds): for a developer's loop.
test-fast: install
	$(BIN)/pytest -m "not slow"

# The date-sensitive tests once more as if on other days (the service's clock, see tests/conftest.py).
DATE_SENSITIVE := tests/stats tests/exports/test_exports.py tests/test_retention.py tests/test_demo.py tests/test_clock.py
OTHER_DAYS := 2027-12-31 2028-02-29 2030-06-15
test-dates: install
	@for day in $(OTHER_DAYS); do echo "== as on $$day"; TEST_TODAY=$$day $(BIN)/pytest -q $(DATE_SENSITIVE) || exit 1; done

fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/pytest tests/test_contract_fuzz.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/risk-register openapi check
	$(SPECTRAL) lint --fail-severity=error -r $(RULESET) openapi.yaml

openapi: install
	$(BIN)/risk-register openapi write

faults: install
	$(BIN)/python -m bench.faults

clean:
	rm -rf $(VENV) $(VENV)-lock instance .pytest_cache .ruff_cache .hypothesis

load: install
	$(BIN)/python -m bench.load

bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Vendor another Swagger UI from the npm registry (service/docs/assets/swagger-ui/VENDORED.md says what and why).
SWAGGER_UI_VERSION ?= 5.35.0
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui.css swagger-ui-bundle.js.LICENSE.txt LICENSE NOTICE
swagger-ui:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null \
	  && tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz \
	  && cd package && cp $(SWAGGER_UI_FILES) $(CURDIR)/service/docs/assets/swagger-ui/ \
	  && sha256sum swagger-ui-bundle.js swagger-ui.css && rm -rf $$tmp

# Pin every dependency at an exact version with hashes, for Python 3.11 on any platform: requirements.lock for the
# image, requirements-dev.lock for `make install` and CI. Run after changing the ranges in pyproject.toml.
UV_VERSION := 0.13.9
LOCK_OPTIONS := --universal --python-version 3.11 --generate-hashes --quiet
lock:
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet uv==$(UV_VERSION)
	$(VENV)-lock/bin/uv pip compile pyproject.toml $(LOCK_OPTIONS) -o requirements.lock
	$(VENV)-lock/bin/uv pip compile pyproject.toml --extra dev $(LOCK_OPTIONS) -o requirements-dev.lock
