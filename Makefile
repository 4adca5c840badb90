# make demo : set up .venv, generate the toy data, train + evaluate the demo
# make test : set up .venv, run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bombo-installed
TOY := data/toy/.complete

.PHONY: demo test venv toy clean

venv: $(STAMP)

$(STAMP): setup.py requirements/build.txt requirements/mmcv.txt requirements/runtime.txt requirements/tests.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/build.txt
	$(PY) -c "import mmcv.ops" 2>/dev/null || \
	  MMCV_WITH_OPS=1 MAX_JOBS=$$(nproc) $(PY) -m pip install --no-build-isolation -r requirements/mmcv.txt
	$(PY) -m pip install -q -r requirements/runtime.txt -r requirements/tests.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import mmcv.ops, mmdet, bombo; print('bombo environment ready')"
	touch $(STAMP)

$(TOY): tools/make_toy_dataset.py | $(STAMP)
	$(PY) tools/make_toy_dataset.py --out data/toy --seed 0
	touch $(TOY)

toy: $(TOY)

demo: $(STAMP) $(TOY)
	$(PY) tools/demo.py configs/toy/toy_r18_fpn_mtl.py --work-dir work_dirs/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf work_dirs data/toy
