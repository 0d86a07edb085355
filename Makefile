# Two commands: `make run` (the pipeline on the camera, else the demo clip) and
# `make test`. Both create the virtual environment .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
OUT ?= out

.PHONY: run test test-trixie lint format train quantize evaluate bench demo-clip figure figures web-screenshots arm64-check pi-vm-check mutation-check constraints clean

# The runtime versions a Raspberry Pi OS Bookworm install gets
# (scripts/pin_constraints.py): the tests run against the set the Pi runs.
CONSTRAINTS ?= constraints/pi-bookworm.txt

# The Pi-side runtime only (no TensorFlow).
$(VENV)/.edge-installed: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e . -c $(CONSTRAINTS)
	touch $@

# Runtime + training + test tools.
$(VENV)/.dev-installed: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,dev,batch]' -c $(CONSTRAINTS)
	touch $(VENV)/.edge-installed $@

# The real picamera2 (pure Python), unpacked beside the venv without its Pi-only
# dependencies: the tests run its preview code over stubbed kms and libcamera
# (tests/fake_picamera2.py). Not importable as `picamera2` from the venv.
PICAMERA2_REAL ?= 0.3.38
$(VENV)/picamera2-real/.installed: Makefile $(VENV)/.dev-installed
	rm -rf $(VENV)/picamera2-real
	$(BIN)/python -m pip install -q --no-deps --target $(VENV)/picamera2-real picamera2==$(PICAMERA2_REAL)
	touch $@

# The Pi's own install: the venv install.sh makes (runtime dependencies and the
# tested constraints for this Python, no dev extras); tests/test_pi_install.py
# runs the README's commands in it.
PI_VENV ?= .venv-pi
$(PI_VENV)/.installed: pyproject.toml constraints/pi-bookworm.txt constraints/pi-trixie.txt edge/systemd/install.sh
	rm -rf $(PI_VENV)
	PYTHON=$(PYTHON) edge/systemd/install.sh --venv-only $(PI_VENV)
	touch $@

run: $(VENV)/.edge-installed
	$(BIN)/emotion-edge run --source auto --display auto --overwrite \
		--record $(OUT)/annotated.mp4 --events $(OUT)/events.jsonl --stats $(OUT)/stats.jsonl \
		$(RUN_ARGS)

# The suite on the Bookworm set (this venv, the Pi install beside it), then on
# Raspberry Pi OS Trixie's (Python 3.13, NumPy 2, OpenCV 5) in a Debian Trixie
# root: that part needs root (chroot), as CI has; elsewhere `sudo make test-trixie`.
test: $(VENV)/.dev-installed $(VENV)/picamera2-real/.installed $(PI_VENV)/.installed
	$(BIN)/python -m pytest
	@$(MAKE) --no-print-directory test-trixie

test-trixie:
	@if [ "$$(id -u)" -eq 0 ]; then scripts/trixie-test.sh -q; \
	else echo "make test: the Trixie run needs root (a chroot): sudo make test-trixie"; fi

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

data/fer2013/train:
	mkdir -p data/fer2013
	tar -xzf $(SHARED)/datasets/fer2013/fer2013-train-publictest.tar.gz -C data/fer2013

# The shipped model is five stages: configs/cnn.toml trains from scratch
# (`make train RUN=cnn`, kept as host_training/teachers/cnn60.tflite),
# configs/cnn-swa.toml fine-tunes that with weight averaging (RUN=cnn-swa,
# kept as teachers/cnn-swa.tflite), configs/cnn-swa2.toml does so once more
# (RUN=cnn-swa2, kept as teachers/cnn-swa2.tflite), configs/cnn-ferplus-w02.toml
# fine-tunes that on 20 % FER+ crowd votes (../shared's ferplus-votes.csv; kept as
# teachers/cnn-ferplus-w02.tflite), and configs/cnn-distill-pair.toml, the default,
# distils that and the crowd model (teachers/cnn-crowd-w04.tflite) into one.
# Training uses Keras' TensorFlow backend with XLA off on a CPU (faster than the
# torch backend here: docs/training.md); .keras files are backend-neutral.
RUN ?= cnn-distill-pair
train: $(VENV)/.dev-installed data/fer2013/train
	KERAS_BACKEND=tensorflow \
		$(BIN)/python -m host_training.train --config host_training/configs/$(RUN).toml --resume

# MODEL_OUT=runs/$(RUN)/emotion_int8.tflite quantizes a candidate without shipping it.
MODEL_OUT ?= models/emotion_int8.tflite
quantize: $(VENV)/.dev-installed
	$(BIN)/python -m host_training.quantize --run runs/$(RUN) --out $(MODEL_OUT) \
		--float-out runs/$(RUN)/emotion_float32.tflite --force

# The shipped model on PublicTest, one view and (as the pipeline runs it)
# flip-averaged; the README's and docs' accuracy tables come from these files.
evaluate: $(VENV)/.dev-installed data/fer2013/train
	$(BIN)/python -m host_training.evaluate models/emotion_int8.tflite data/fer2013 \
		--out docs/evaluation --log runs/$(RUN)/log.csv
	$(BIN)/python -m host_training.evaluate models/emotion_int8.tflite data/fer2013 \
		--flip-average --out docs/evaluation/flip-average

# Throughput, latency and scaling; results in benchmarks/results/<host>/.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

demo-clip: $(VENV)/.edge-installed data/fer2013/train
	$(BIN)/python scripts/make_demo_clip.py --data data/fer2013/test

# The README's pictures of the web page, desktop and phone, from the browser test.
web-screenshots: $(VENV)/.dev-installed
	WEB_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_web_browser.py -k fits

# The measured tables of README.md and docs/, from the committed results.
figures: $(VENV)/.dev-installed
	$(BIN)/python scripts/figures.py

figure: $(VENV)/.edge-installed
	$(BIN)/python scripts/readme_figure.py

# Emulated Raspberry Pi OS Lite (arm64 Bookworm): install.sh, then the demo clip.
# Needs debootstrap, qemu-user-static and proot; the pre-release check.
arm64-check:
	scripts/arm64-check.sh

# A Raspberry Pi in a box: Debian Trixie (PI_VM_ARGS=--suite bookworm for the
# previous release) booted in QEMU with systemd, a V4L2 camera, a screen and
# libcamera's Virtual camera; install.sh as a user runs it, then boot, screen,
# sandbox, hang, unplug, power cut, desktop and the real picamera2
# (scripts/pi_vm_check.py). The release check of
# the service; needs root the first time (debootstrap), and
# apt-get install qemu-system-x86 qemu-utils debootstrap e2fsprogs openssh-client.
pi-vm-check: $(VENV)/.edge-installed
	$(BIN)/python scripts/pi_vm_check.py $(PI_VM_ARGS)

# Break the code on purpose, once per named break, on a scratch copy: the
# tests guarding each must fail (scripts/mutation_check.py; a release check).
mutation-check: $(VENV)/.dev-installed
	$(BIN)/python scripts/mutation_check.py --out docs/mutation.md

# Re-resolve the Pi's tested dependency sets (constraints/pi-*.txt) from the
# package index; then run `make test` and `make arm64-check` on the result.
constraints: $(VENV)/.edge-installed
	$(BIN)/python scripts/pin_constraints.py

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache
