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

book: $(STAMP)
	WSLIB_PROFILE=$(WSLIB_PROFILE) $(VENV)/bin/jupyter-book build . -W --keep-going

test: $(STAMP)
	WSLIB_PROFILE=quick $(PYTHON) -m pytest --nbval-lax tests book

bench: $(STAMP)
	$(PYTHON) -m wslib.bench

clean:
	rm -rf _build
