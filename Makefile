# Gatehouse: `make run` and `make test` work on a fresh machine; every install step skips what is
# already there. Tool versions are the ones checked end to end here (see DEVELOPERS.md).

SHELL := /bin/bash
.DEFAULT_GOAL := run

CARGO_LEPTOS_VERSION := 0.3.10
WASM_BINDGEN_VERSION := 0.2.130
export PATH := $(CURDIR)/tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# Share cargo-leptos' debug artifacts with `cargo test` and `cargo clippy` (no second dependency build).
# cargo-leptos also compiles LEPTOS_OUTPUT_NAME into leptos; without the same value a test build
# relinks the server with the wrong bundle name (`gatehouse_bg.wasm`) and the pages stop hydrating.
TEST_RUSTFLAGS := --cfg erase_components
export LEPTOS_OUTPUT_NAME := gatehouse
GATEHOUSE_ADDR ?= 127.0.0.1:3000
GATEHOUSE_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
E2E_ADDR ?= 127.0.0.1:3217

.PHONY: run build test tools rust-tools node-tools browser check unit fuzz e2e bench loadtest usage-cost page-timing clean-data

## run: install what is missing, build in release mode and serve on SQLite (./data/gatehouse.db)
run: rust-tools node-tools build
	@echo
	@echo "  Gatehouse is starting on http://$(GATEHOUSE_ADDR)  (database: $${DATABASE_URL:-sqlite://data/gatehouse.db})"
	@echo "  Open it in a browser; on first start the log below prints a one-time setup link for the first admin."
	@echo
	LEPTOS_SITE_ROOT=target/site GATEHOUSE_ADDR=$(GATEHOUSE_ADDR) ./target/release/gatehouse serve

build:
	cargo leptos build --release

## test: install what is missing, then fmt, clippy, unit + integration (SQLite and PostgreSQL), API fuzzing, Playwright
test: tools check unit fuzz e2e

tools: rust-tools node-tools browser

rust-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@cargo leptos --version 2>/dev/null | grep -q " $(CARGO_LEPTOS_VERSION)" \
		|| cargo install cargo-leptos --locked --version $(CARGO_LEPTOS_VERSION)
	@wasm-bindgen --version 2>/dev/null | grep -q " $(WASM_BINDGEN_VERSION)" \
		|| cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

node-tools:
	@test -x tools/node_modules/.bin/wasm-opt || (cd tools && npm install --no-audit --no-fund)
	@test -d end2end/node_modules/@reflag/browser-sdk && test -d end2end/node_modules/axe-core \
		|| (cd end2end && npm ci --no-audit --no-fund)
	@test -d tests/differential/node_modules/@reflag/flag-evaluation \
		|| (cd tests/differential && npm ci --no-audit --no-fund)
	@test -x tests/sdk/node_modules/.bin/tsc && test -d tests/sdk/node_modules/@modelcontextprotocol/sdk \
		&& test -d tests/sdk/node_modules/standardwebhooks \
		|| (cd tests/sdk && npm ci --no-audit --no-fund)

browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

check:
	cargo fmt --check
	RUSTFLAGS="$(TEST_RUSTFLAGS)" cargo clippy --features ssr --all-targets -- -D warnings

unit:
	cargo leptos build
	GATEHOUSE_TEST_POSTGRES_URL=$(GATEHOUSE_TEST_POSTGRES_URL) RUSTFLAGS="$(TEST_RUSTFLAGS)" \
		cargo test --features ssr --no-fail-fast

## fuzz: schemathesis against /openapi.json (every public route but the streams); fails on any 5xx
fuzz:
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-50} scripts/fuzz-api.sh

e2e:
	cd end2end && GATEHOUSE_E2E_ADDR=$(E2E_ADDR) npx playwright test

bench:
	scripts/bench-engine.sh

clean-data:
	rm -rf data

## loadtest: release server under wrk (100,000 companies, 1,000 flags); updates BENCHMARKS.md
loadtest: rust-tools node-tools
	scripts/loadtest.sh
	LOADTEST_SKIP_BUILD=1 scripts/usage-overhead.sh

## usage-cost: what usage counting costs per request in instructions (valgrind); updates BENCHMARKS.md
usage-cost: rust-tools node-tools
	scripts/usage-instructions.sh

page-timing: rust-tools node-tools
	scripts/page-timing.sh
