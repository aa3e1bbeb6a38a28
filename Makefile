# Soporte ecollect — the two commands a new user types are `make run` and
# `make test`; both create .venv, install, and train only when data changed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
MODEL       := models/ecollect.tar.gz
WIDGET_DEPS := widget/node_modules/socket.io-client/dist/socket.io.min.js
TRAIN_INPUTS := config.yml domain.yml bot/catalog.yml $(shell find data -name '*.yml' 2>/dev/null)

# Embedded defaults; any of them can be overridden from the environment.
export BOT_DATA_DIR ?= $(CURDIR)/var
export RASA_PORT    ?= 5005
export ACTIONS_PORT ?= 5055
export WEB_PORT     ?= 8000
export TF_CPP_MIN_LOG_LEVEL ?= 2
export SQLALCHEMY_SILENCE_UBER_WARNING ?= 1
export RASA_TELEMETRY_ENABLED ?= false

.PHONY: help install sync train run lint test clean bench-nlu bench-load bench-followup teams-app bench-kb bench-review

help:
	@echo "make run    instala, entrena si hace falta y arranca el asistente (Ctrl-C para detener)"
	@echo "make test   instala, entrena si hace falta y ejecuta todas las pruebas"
	@echo "make train  solo entrena el modelo (si cambiaron los datos)"
	@echo "make lint   ruff (estilo y formato) y mypy (tipos) sobre bot/ y actions/; make test lo corre primero"
	@echo "make bench-nlu  mide el NLU en el conjunto de evaluación frente al pipeline por defecto de Rasa"
	@echo "make bench-load mide mensajes/s y latencias con 10 y 200 clientes a la vez, frente a /model/parse"
	@echo "make bench-followup mide la latencia de 200 avisos (webhook de JSM → WhatsApp), frente al envío directo"
	@echo "make bench-kb   mide la búsqueda de artículos (recall@3, MRR, latencia) frente a una búsqueda por palabras"
	@echo "make bench-review mide las páginas de cifras de revisión con 10 000 y 100 000 conversaciones generadas"
	@echo "make teams-app  genera results/teams-app/soporte-ecollect.zip para cargar la aplicación en Teams (TEAMS_APP_ID)"
	@echo "make clean  borra el entorno, los modelos y los datos locales"

$(STAMP): pyproject.toml constraints.txt
	@python=$$(scripts/find-python.sh) && \
	  { [ -x $(PY) ] || { echo "Creando $(VENV) con $$python"; "$$python" -m venv $(VENV); }; }
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

# The web widget's only dependency, socket.io-client, from the npm registry.
$(WIDGET_DEPS): widget/package.json widget/package-lock.json
	@command -v npm >/dev/null || { echo "ERROR: falta npm (Node.js) para instalar el widget web."; exit 1; }
	npm ci --prefix widget --no-audit --no-fund --silent
	@touch $@

install: $(STAMP) $(WIDGET_DEPS)

sync: $(STAMP)
	$(PY) -m bot sync

# `bot sync` rewrites generated files only when the catalog changed them, and
# `rasa train` skips work its fingerprint says is done; touching the model
# records that the current inputs are trained.
$(MODEL): $(STAMP) $(TRAIN_INPUTS)
	$(PY) -m bot sync
	$(PY) -m rasa train --fixed-model-name ecollect --out models --num-threads 2
	@touch $@

train: $(MODEL)

run: $(MODEL) $(WIDGET_DEPS)
	$(PY) -m bot run

# The static gate: fails fast, before any training.
lint: $(STAMP)
	$(PY) -m ruff check bot actions
	$(PY) -m ruff format --check bot actions
	$(PY) -m mypy

# The suite runs against the embedded default and against real PostgreSQL and
# Redis servers, which scripts/ensure-services.sh installs and starts.
test: lint $(MODEL) $(WIDGET_DEPS)
	@CHROMIUM=$$(scripts/ensure-chromium.sh) && export CHROMIUM && \
	  services=$$(scripts/ensure-services.sh) && eval "$$services" && export TEST_POSTGRES_URL TEST_REDIS_URL && \
	  $(PY) -m pytest

bench-nlu: $(STAMP)
	$(PY) -m bot sync
	$(PY) -m bot bench nlu --out results/bench-nlu

bench-load: $(MODEL) $(WIDGET_DEPS)
	$(PY) -m bot bench load

# No model needed: the web server and the follow-up worker against local fakes of JSM, Twilio and Rasa's API.
bench-followup: $(STAMP)
	$(PY) -m bot bench followup

# No model, no servers: the knowledge base's search on held-out questions (the shipped articles,
# and a synthetic base in the fake JSM), beside a plain keyword baseline.
bench-kb: $(STAMP)
	$(PY) -m bot.bench_kb

# No model, no servers: the review pages' figures over 10 000 and 100 000 generated conversations (SQLite).
bench-review: $(STAMP)
	$(PY) -m bot.bench_review

# The Teams app package (manifest.json + icons), validated against the pinned schema; needs TEAMS_APP_ID.
teams-app: $(STAMP)
	$(PY) -m bot teams-app --out results/teams-app

clean:
	rm -rf $(VENV) models var results .pytest_cache widget/node_modules
