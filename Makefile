# Benchmarks and the book's tables, in one command each.
#
#   make bench        quick mode, everything: build, the Rust-level core scenarios and the
#                     Python-level benchmarks (asyncio, uvloop, rloop, every PyLoop phase),
#                     then every table and plot of the book from these quick results
#                     (about 2-3 minutes on 2 cores, a first build aside)
#   make bench-full   the same in full mode, writing the published results
#                     (benchmarks/results/core.json and python.json: commit them with
#                     book/src/generated/)
#   make tables       regenerate every table and plot from the committed full results,
#                     undoing what `make bench` wrote into book/src/generated/, and the
#                     README's headline chart (benchmarks/results/headline.svg)
#   make serve        serve the book on http://127.0.0.1:3000 (mdbook)
#
# `make bench-py` / `make bench-py-full` run only the Python-level part (with its tables);
# `make bench-io` / `make bench-io-full` the I/O benchmarks (echo and uvicorn over asyncio,
# uvloop, rloop and PyLoop; benchmarks/io/README.md), `make tables-io` their tables.
# `make bench-instr` / `make bench-instr-full`: instructions per item under callgrind, each
# workload on each loop (benchmarks/instr/run.py; the figures that do not move with the
# machine's load, to compare commits), `make tables-instr` their table.
# Quick results go to benchmarks/results/quick/ (ignored by git); `make bench` shows them in
# the book so that it serves this machine's numbers, and `make tables` puts the published
# ones back (scripts/test.sh checks the committed tables against the committed results).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
CARGO ?= cargo
GENERATED := book/src/generated
RESULTS := benchmarks/results
CORE_RUN := $(CARGO) run -p pyloop-benchmarks --release --bin core_scenarios --

.PHONY: help setup build bench bench-full bench-core bench-core-full bench-py bench-py-full \
	bench-instr bench-instr-full tables-instr tables-other \
	bench-io bench-io-full tables tables-core tables-py tables-io headline serve

help:
	@sed -n '2,20p' Makefile | sed 's/^# \{0,1\}//'

setup:
	bash scripts/setup.sh

# The extension, in release mode, into .venv (the benchmarks import it from there).
build: setup
	source scripts/env.sh && maturin develop --release --quiet

bench: build bench-core bench-py
	@echo "make bench: quick results in $(RESULTS)/quick/, tables and plots in $(GENERATED)/"
	@echo "            (\`make tables\` restores the published ones before a commit)"

bench-full: build bench-core-full bench-py-full

bench-core:
	mkdir -p $(RESULTS)/quick
	$(CORE_RUN) --quick --out $(RESULTS)/quick/core.json
	$(PYTHON) benchmarks/tables.py $(RESULTS)/quick/core.json --out $(GENERATED)

bench-core-full:
	$(CORE_RUN) --full --out $(RESULTS)/core.json
	$(PYTHON) benchmarks/tables.py $(RESULTS)/core.json --out $(GENERATED)

bench-py:
	$(PYTHON) benchmarks/pyloop/run.py --quick --out $(RESULTS)/quick/python.json
	$(PYTHON) benchmarks/pyloop/tables.py $(RESULTS)/quick/python.json --out $(GENERATED)

bench-py-full:
	$(PYTHON) benchmarks/pyloop/run.py --full --out $(RESULTS)/python.json
	$(PYTHON) benchmarks/pyloop/tables.py $(RESULTS)/python.json --out $(GENERATED)

bench-io: build
	bash benchmarks/io/setup.sh
	$(PYTHON) benchmarks/io/run.py --quick --out $(RESULTS)/quick/io.json
	$(PYTHON) benchmarks/io/tables.py $(RESULTS)/quick/io.json --out $(GENERATED)

bench-io-full: build
	bash benchmarks/io/setup.sh
	$(PYTHON) benchmarks/io/run.py --full --out $(RESULTS)/io.json
	$(PYTHON) benchmarks/io/tables.py $(RESULTS)/io.json --out $(GENERATED)

bench-instr: build
	mkdir -p $(RESULTS)/quick
	$(PYTHON) benchmarks/instr/run.py --quick --out $(RESULTS)/quick/instr.json
	$(PYTHON) benchmarks/instr/tables.py $(RESULTS)/quick/instr.json --out $(GENERATED)

bench-instr-full: build
	$(PYTHON) benchmarks/instr/run.py --full --out $(RESULTS)/instr.json
	$(PYTHON) benchmarks/instr/tables.py $(RESULTS)/instr.json --out $(GENERATED)

tables-instr:
	$(PYTHON) benchmarks/instr/tables.py $(RESULTS)/instr.json --out $(GENERATED)

tables: tables-core tables-py tables-io tables-instr tables-other headline

# The rest of what the book shows from committed results: the spread of single Rust-level
# runs, the per-function profile (with the run before issue 10's changes), the soak runs, the
# Amdahl fits and the diagrams (drawn by pyloop-model).
tables-other:
	$(PYTHON) benchmarks/spread_tables.py $(RESULTS)/spread.json --out $(GENERATED)
	$(PYTHON) benchmarks/profile/callgrind.py --tables $(RESULTS)/callgrind.json \
		--before $(RESULTS)/callgrind-57b79b8.json --book $(GENERATED)
	$(PYTHON) benchmarks/soak/tables.py benchmarks/soak/results/full-*.json --out $(GENERATED)
	$(CARGO) run --quiet -p pyloop-model --bin amdahl_book -- --out $(GENERATED)

# The README's chart (PyLoop against asyncio, uvloop and rloop) from the committed runs.
headline:
	$(PYTHON) benchmarks/headline.py

tables-core:
	$(PYTHON) benchmarks/tables.py $(RESULTS)/core.json --out $(GENERATED)

tables-py:
	$(PYTHON) benchmarks/pyloop/tables.py $(RESULTS)/python.json --out $(GENERATED)

tables-io:
	$(PYTHON) benchmarks/io/tables.py $(RESULTS)/io.json --out $(GENERATED)
	$(PYTHON) benchmarks/io/tables.py $(RESULTS)/io-82ad72a.json --out $(GENERATED)/io_before --no-plots
	$(PYTHON) benchmarks/io/tables.py $(RESULTS)/io-0a67f45.json --out $(GENERATED)/io_prev --no-plots

serve:
	source scripts/env.sh && mdbook serve book --hostname 127.0.0.1 --port $${PORT:-3000}
