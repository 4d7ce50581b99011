# mailsift: two commands for a fresh Debian 12 machine (as root). Both are safe to run twice.
#   make run   installs what it needs and runs mailsift on its embedded default
#   make test  installs what it needs (including the real servers the tests start) and runs the tests

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
PIP   := $(VENV)/bin/pip

# Debian packages: build deps for pymilter/hiredis, and the real peers the tests talk to.
APT_RUN  := python3 python3-venv python3-dev gcc libmilter-dev
APT_TEST := $(APT_RUN) spamassassin spamc bogofilter postfix redis-server miltertest dnsmasq-base chromium
APT_BENCH := $(APT_TEST) spamd spamass-milter
STAMP    := $(VENV)/.installed

.PHONY: run test bench lint deps-run deps-test clean

deps-run:
	@./.ci/apt-install $(APT_RUN)
	@$(MAKE) --no-print-directory $(STAMP)

deps-test:
	@./.ci/apt-install $(APT_TEST)
	@$(MAKE) --no-print-directory $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q -e '.[test]'
	touch $(STAMP)

# The milter on its embedded default (SQLite Bayes store, quarantine and rule cache under ./var).
RUNDIR := $(CURDIR)/var
run: deps-run
	@mkdir -p $(RUNDIR)
	@test -f $(RUNDIR)/mailsift.toml || printf '%s\n' \
	  '# Written by make run; edit freely. All keys: mailsift.example.toml' \
	  '[bayes]' 'store = "sqlite:///$(RUNDIR)/bayes.sqlite"' \
	  '[quarantine]' 'dir = "$(RUNDIR)/quarantine"' \
	  '[rules]' 'cache_dir = "$(RUNDIR)/cache"' > $(RUNDIR)/mailsift.toml
	@echo "== mailsift milter, config $(RUNDIR)/mailsift.toml. Add these lines to Postfix:"
	@$(VENV)/bin/mailsift --config $(RUNDIR)/mailsift.toml postfix
	@echo "== starting (Ctrl-C stops it)"
	exec $(VENV)/bin/mailsift --config $(RUNDIR)/mailsift.toml milter

test: deps-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

# Rewrites BENCHMARKS.md: mailsift against SpamAssassin, spamass-milter and bogofilter, side by
# side in one run each (about 25 minutes on 2 cores; run it on an otherwise idle machine).
bench: deps-test
	@./.ci/apt-install $(APT_BENCH)
	$(PY) bench/score.py --write
	$(PY) bench/bayes.py --write
	$(PY) bench/bayes_cv.py --write
	$(PY) bench/learn_cpu.py --write
	$(PY) bench/milter.py --write
	$(PY) bench/redis_memory.py --write

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
