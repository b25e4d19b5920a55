"""How soon a caller hears the agent start to speak, and what Kokoro costs.

Why: after the model starts answering, the caller waits for the first audio chunk. Kokoro makes
a piece of audio in one model call, so speaking a reply in one call makes the caller wait for
all of it, while cutting it into sentences (agents.conversation.sentences.SentenceChunker) lets the first
sentence play while the rest is made. This script puts numbers on that, for the bundled
Kokoro-82M int8 model (or a local one) with the engine the pod uses (agents.engines.local.kokoro).

Run from the repository root (about a minute with the default 5 runs on 2 cores):

    .venv/bin/python benchmarks/tts.py
    .venv/bin/python benchmarks/tts.py --runs 3 --threads 4 --voice jf_tebukuro

Method:
- The model is loaded once and warmed up (one word), as the pod does at start-up.
- 'one call' runs kokoro.create on the whole reply in one pool job (kokoro-onnx batches it
  internally), so its first audio is all of its audio. 'engine' is KokoroTextToSpeech.synthesize
  on the whole reply: it cuts it into sentences itself and yields each as it is made. 'chunker'
  streams the reply into a SentenceChunker word by word, as an LLM would (instantly here, so
  only TTS time is measured), and calls synthesize on each chunk it returns, clause breaks
  included (the session's path).
- First audio: time from the start until the first PCM chunk is in hand. Total: until the last.
  RTF: total compute over seconds of audio produced (below 1 is faster than real time).
- Each figure is the median of --runs runs, variants interleaved so drift hits all alike.
- Peak RSS: the process's ru_maxrss at the end (model, onnxruntime arenas and Python).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.conversation.sentences import SentenceChunker
from agents.engines.local.kokoro import BUNDLED_MODEL, KokoroTextToSpeech

REPLIES = {
    "one sentence": "Your order will arrive on Tuesday afternoon.",
    "three sentences": (
        "I found the order you placed last Thursday, and it shipped this morning from our warehouse in Ohio. "
        "It should arrive on Tuesday afternoon. Is there anything else I can help you with?"
    ),
}


async def one_call(tts: KokoroTextToSpeech, text: str) -> AsyncIterator[bytes]:
    def whole() -> bytes:
        audio, _ = tts.kokoro.create(text, voice=tts.voice, speed=tts.speed, lang=tts.lang)
        return (audio.clip(-1, 1) * 32767).astype("<i2").tobytes()

    yield await tts.pool.run(whole)


async def engine(tts: KokoroTextToSpeech, text: str) -> AsyncIterator[bytes]:
    async for pcm in tts.synthesize(text):
        yield pcm


async def chunker(tts: KokoroTextToSpeech, text: str) -> AsyncIterator[bytes]:
    chunks = SentenceChunker(clause_min_chars=40, max_chunk_chars=250)
    words = text.split(" ")
    for i, word in enumerate(words):
        for chunk in chunks.feed(word if i == 0 else " " + word):
            async for pcm in tts.synthesize(chunk):
                yield pcm
    for chunk in chunks.flush():
        async for pcm in tts.synthesize(chunk):
            yield pcm


Variant = Callable[[KokoroTextToSpeech, str], AsyncIterator[bytes]]
VARIANTS: dict[str, Variant] = {
    "one call": one_call,
    "engine": engine,
    "chunker": chunker,
}


async def measure(variant: Variant, tts: KokoroTextToSpeech, text: str) -> tuple[float, float, float, int]:
    """Seconds to the first chunk and to the last, seconds of audio, and the number of chunks."""
    start = time.perf_counter()
    first: float | None = None
    audio_bytes = chunks = 0
    async for pcm in variant(tts, text):
        first = first if first is not None else time.perf_counter() - start
        audio_bytes += len(pcm)
        chunks += 1
    total = time.perf_counter() - start
    return (total if first is None else first), total, audio_bytes / 2 / tts.sample_rate, chunks


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=BUNDLED_MODEL)
    parser.add_argument("--voices", default=None)
    parser.add_argument("--voice", default="jf_nezumi")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    tts = KokoroTextToSpeech.load(args.model, args.voices, voice=args.voice, threads=args.threads)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    await tts.warm_up()
    warmed = time.perf_counter() - start
    providers = tts.kokoro.sess.get_providers()
    print(f"Kokoro TTS: {args.model}, voice {args.voice}, {args.threads} threads, {providers[0]}")
    print(f"python {platform.python_version()} on {platform.machine()}, runs={args.runs} (medians)")
    print(f"load {loaded:.2f} s (join check + session), warm-up {warmed:.2f} s\n")

    header = f"{'reply':<16} {'variant':<9} {'chunks':>6} {'audio s':>8} {'first audio':>11} {'total s':>8} {'RTF':>5}"
    print(header)
    print("-" * len(header))
    for reply, text in REPLIES.items():
        results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in VARIANTS}
        for _ in range(args.runs):
            for name, variant in VARIANTS.items():
                results[name].append(await measure(variant, tts, text))
        for name, runs in results.items():
            first = statistics.median(r[0] for r in runs)
            total = statistics.median(r[1] for r in runs)
            audio = statistics.median(r[2] for r in runs)
            rtf = total / audio
            print(f"{reply:<16} {name:<9} {runs[0][3]:>6} {audio:>8.2f} {first:>9.3f} s {total:>8.3f} {rtf:>5.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak_mb:.0f} MB")
    tts.close()


if __name__ == "__main__":
    asyncio.run(main())
