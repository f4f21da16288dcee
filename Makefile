# Two commands do everything on a fresh machine (Python >= 3.10 with venv, and make):
#   make book   -- create .venv on first use, execute every notebook, write HTML to _build/html
#   make test   -- unit tests + every notebook through nbval, in the quick profile
VENV   := .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The book is built in the tutorial profile unless told otherwise (make book WSLIB_PROFILE=quick).
WSLIB_PROFILE ?= tutorial

.PHONY: book test bench clean

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install -r requirements.txt
	touch $(STAMP)

# Jupyter Book's execution cache re-runs only the notebooks whose code changed. It cannot see
# the profile, the library, the pinned packages or the recorded results the chapters read, so a
# change to any of them empties it (the key is computed only when `book` runs) -- and Sphinx's
# saved environment (_build/.doctrees) with it, or Sphinx would re-read only the pages whose
# source changed and keep the old outputs of every other chapter.
CACHE_KEY = $(shell { echo $(WSLIB_PROFILE); find wslib results checkpoints \
	experiments/checkpoints requirements.txt -type f ! -name '*.pyc' 2>/dev/null \
	| LC_ALL=C sort | xargs sha1sum; } | sha1sum | cut -c1-16)

# -W: a warning fails the build; -n (nitpicky): so does any reference that does not resolve,
# including the API reference's links to Python's, PyTorch's, NumPy's and SciPy's documentation
# (offline, through the inventories in book/_ext/inventories).
book: $(STAMP)
	@mkdir -p _build
	@if [ "$$(cat _build/.cache_key 2>/dev/null)" != "$(CACHE_KEY)" ]; then \
		rm -rf _build/.jupyter_cache _build/.doctrees; echo "$(CACHE_KEY)" > _build/.cache_key; fi
	WSLIB_PROFILE=$(WSLIB_PROFILE) $(VENV)/bin/jupyter-book build . -W -n --keep-going

# A notebook cell may run 300 s, then nbval fails it as "<notebook>::Cell <n>" (n counts code
# cells from 0). Measured on 2 cores under a load of 4-7 (one thread, niced), the slowest
# quick-profile cells took 22 s (chapter 5) and 17 s (chapter 4), whole chapters at most 57 s;
# 300 s is over ten times the slowest cell and above a quick chapter's 3-minute budget.
test: $(STAMP)
	WSLIB_PROFILE=quick $(PYTHON) -m pytest --nbval-lax --nbval-cell-timeout=300 tests book

bench: $(STAMP)
	$(PYTHON) -m wslib.bench

clean:
	rm -rf _build
