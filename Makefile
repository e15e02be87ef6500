# The course's commands. Everything runs in .venv, created on first use from requirements.txt.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: venv sandbox test book check-book lint release publish clean

venv: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	@$(MAKE) --no-print-directory sandbox
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@# instructor tools (autograder, its hidden-test battery, tests) importable in this venv's kernels only
	$(PY) -c 'import pathlib, site; pathlib.Path(site.getsitepackages()[0], "course-instructor.pth").write_text("$(CURDIR)\n")'
	touch $(INSTALLED)

## sandbox: bubblewrap, which the grader runs every student kernel in (installed with apt as root)
sandbox:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q bubblewrap >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }; \
	  else echo "bubblewrap is missing: run  sudo apt-get install bubblewrap  (grading refuses to run without it)"; exit 1; fi; }

## test: the whole test suite (unit tests, release check, grading corpus, the student edition built and checked),
## slowest tests listed at the end
test: $(INSTALLED)
	$(PY) -m pytest --durations=30

## book: build the HTML book into _build/html, executing chapters (cached), warnings as errors;
## EDITION=student builds the published student edition instead, on its own, in _build/student-edition
EDITION ?= instructor
book: $(INSTALLED)
ifeq ($(EDITION),student)
	$(PY) -m autograder publish _build/student-edition
	cd _build/student-edition && DLCOURSE_STATIC_FIGURES=1 $(CURDIR)/$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
else
	DLCOURSE_STATIC_FIGURES=1 $(VENV)/bin/jupyter-book build . --warningiserror --keep-going
endif

## check-book: checks of the built book in _build/html (run after make book)
check-book: $(INSTALLED)
	$(PY) -m pytest -o addopts="" tests/built_book.py

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

## release: regenerate labs/ from solutions/
release: $(INSTALLED)
	$(PY) -m autograder release

## publish: write the student edition into DEST for the public repository (URL=..., BRANCH=... optional)
publish: $(INSTALLED)
	@test -n "$(DEST)" || { echo "usage: make publish DEST=folder [URL=https://github.com/org/repo] [BRANCH=main]"; exit 2; }
	$(PY) -m autograder publish "$(DEST)" $(if $(URL),--url "$(URL)") $(if $(BRANCH),--branch "$(BRANCH)")

clean:
	rm -rf _build
