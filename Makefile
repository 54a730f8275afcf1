# make run | make test | make bench -- each bootstraps .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean screenshots package

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks

# the user guide's pictures (docs/images/), taken offscreen from the real window
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) docs/screenshots.py

lint: $(STAMP)
	$(PY) -m ruff check studio tests benchmarks

# make package [VARIANT=cpu|gpu] [PACKAGE_PY=python of the build environment]
# One-folder application in dist/vision-studio-VARIANT (packaging/README.md). The CPU
# variant needs an environment with PyTorch's CPU-only wheels (the spec checks it).
VARIANT ?= cpu
PACKAGE_PY ?= $(PY)

package: $(if $(filter $(PY),$(PACKAGE_PY)),$(STAMP))
	$(PACKAGE_PY) -m PyInstaller --version >/dev/null 2>&1 || \
		$(PACKAGE_PY) -m pip install -q 'pyinstaller>=6.10,<7'
	$(PACKAGE_PY) -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist \
		--workpath build/pyinstaller-$(VARIANT) packaging/vision-studio.spec -- --variant $(VARIANT)

clean:
	rm -rf $(VENV) build *.egg-info
