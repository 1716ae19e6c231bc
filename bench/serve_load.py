"""Load test of `privtune serve` with the real `openai` client: batched server vs one-request-at-a-time baseline.

What it does, all offline on the packaged SmolLM2-135M-Instruct:
1. builds two LoRA run dirs on the packaged base (random small adapter weights: serving cost does not depend
   on what an adapter learned) and an API key;
2. starts `privtune serve` as a subprocess with --max-batch-size 1 (the baseline: requests are served one at a
   time, as by a server without batching), drives it with C concurrent streaming chat requests, stops it;
3. starts it again with dynamic batching (--max-batch-size 16), same requests, same concurrency;
4. then a burst of B concurrent streaming requests against the batched server (must finish with 0 errors).
Phases alternate (baseline, batched, baseline, batched …) when --rounds > 1 so background load hits both.
Requests are greedy with a fixed max_tokens, so both servers generate the same tokens and tokens/s compare.

    .venv/bin/python bench/serve_load.py                 # defaults used for bench/README.md
    .venv/bin/python bench/serve_load.py --readme ''     # don't touch the README
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPTS = [
    "My card was stolen yesterday, what should I do first?",
    "I can't log in to online banking since the update.",
    "A transfer to my landlord failed twice. Why?",
    "How do I raise the daily limit on my debit card?",
    "There is a payment on my statement I do not recognise.",
    "Can I open a savings account for my daughter online?",
    "Write a short, polite reply confirming a replacement card is on its way.",
    "Explain in two sentences what a standing order is.",
]
SECTION = "## Serving: `bench/serve_load.py`"


def make_runs(root: Path) -> dict[str, Path]:
    """Two LoRA adapters (r=16, all linear layers) on the packaged base, shaped like `privtune train` output."""
    import torch
    from peft import LoraConfig, get_peft_model

    from privtune import fsio
    from privtune.models import load_model, load_tokenizer, resolve_base

    base = resolve_base(None)
    runs = {}
    for seed, name in enumerate(("support", "legal"), start=1):
        torch.manual_seed(seed)
        model = get_peft_model(load_model(base), LoraConfig(
            r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj"]))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 1e-3)
        out = root / name
        model.save_pretrained(out / "adapter")
        load_tokenizer(base).save_pretrained(out / "adapter")
        fsio.write_json(out / "run.json", {"status": "finished", "method": "lora", "adapter_name": name,
                                           "config": {"base": None}, "base": base.to_dict(),
                                           "adapter_sha256": fsio.sha256_dir(out / "adapter")})
        runs[name] = out
    return runs


class Server:
    """`privtune serve` in a subprocess; the context manager waits for /health and stops it with SIGINT."""

    def __init__(self, runs: dict[str, Path], keys: Path, port: int, env: dict, batch: int, threads: int,
                 guard: bool, log: Path):
        self.cmd = [sys.executable, "-m", "privtune.cli", "serve", "--keys", str(keys), "--port", str(port),
                    "--max-batch-size", str(batch), "--threads", str(threads)]
        for name, path in runs.items():
            self.cmd += ["--adapter", f"{name}={path}"]
        if not guard:
            self.cmd.append("--no-guard")
        self.env, self.port, self.log = env, port, log

    def __enter__(self):
        import httpx

        self.fh = open(self.log, "ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.fh, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server did not come up in 300 s")

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.fh.close()


async def one(client, model: str, prompt: str, max_tokens: int) -> dict:
    t0 = time.perf_counter()
    first = None
    tokens = 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0,
        stream=True, stream_options={"include_usage": True})
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter() - t0
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return {"latency": time.perf_counter() - t0, "ttft": first if first is not None else float("nan"),
            "tokens": tokens}


async def drive(port: int, key: str, n: int, concurrency: int, max_tokens: int) -> dict:
    """n streaming requests, at most `concurrency` in flight, round-robin over models and prompts."""
    import openai

    client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=600)
    models = ["support", "legal", "SmolLM2-135M-Instruct"]
    sem = asyncio.Semaphore(concurrency)
    results, errors = [], []

    async def task(i: int):
        async with sem:
            try:
                results.append(await one(client, models[i % 3], PROMPTS[i % len(PROMPTS)], max_tokens))
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(e).__name__}: {e}")

    t0 = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(n)))
    wall = time.perf_counter() - t0
    await client.close()
    return summarise(results, errors, wall, concurrency)


def pct(values: list[float], q: float) -> float:
    values = sorted(v for v in values if v == v)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summarise(results: list[dict], errors: list[str], wall: float, concurrency: int) -> dict:
    lat = [r["latency"] for r in results]
    ttft = [r["ttft"] for r in results]
    tokens = sum(r["tokens"] for r in results)
    return {"requests": len(results) + len(errors), "errors": len(errors), "error_samples": errors[:3],
            "concurrency": concurrency, "wall_s": round(wall, 2), "requests_per_s": round(len(results) / wall, 3),
            "tokens": tokens, "tokens_per_s": round(tokens / wall, 2),
            "latency_p50_s": round(pct(lat, 0.5), 3), "latency_p95_s": round(pct(lat, 0.95), 3),
            "ttft_p50_s": round(pct(ttft, 0.5), 3), "ttft_p95_s": round(pct(ttft, 0.95), 3)}


def merge_rounds(rounds: list[dict]) -> dict:
    """Pool the rounds of one phase: totals summed, rates recomputed from the totals."""
    if len(rounds) == 1:
        return rounds[0]
    wall = sum(r["wall_s"] for r in rounds)
    done = sum(r["requests"] - r["errors"] for r in rounds)
    tokens = sum(r["tokens"] for r in rounds)
    out = {"requests": sum(r["requests"] for r in rounds), "errors": sum(r["errors"] for r in rounds),
           "concurrency": rounds[0]["concurrency"], "wall_s": round(wall, 2),
           "requests_per_s": round(done / wall, 3), "tokens": tokens, "tokens_per_s": round(tokens / wall, 2),
           "rounds_tokens_per_s": [r["tokens_per_s"] for r in rounds]}
    for k in ("latency_p50_s", "latency_p95_s", "ttft_p50_s", "ttft_p95_s"):
        out[k] = round(statistics.median(r[k] for r in rounds), 3)
    return out


def table(phases: dict[str, dict]) -> str:
    head = ("| phase | concurrency | requests | errors | requests/s | tokens/s | latency p50 / p95 (s) | "
            "TTFT p50 / p95 (s) |\n|---|---|---|---|---|---|---|---|\n")
    rows = [f"| {name} | {r['concurrency']} | {r['requests']} | {r['errors']} | {r['requests_per_s']:.2f} | "
            f"{r['tokens_per_s']:.1f} | {r['latency_p50_s']:.2f} / {r['latency_p95_s']:.2f} | "
            f"{r['ttft_p50_s']:.2f} / {r['ttft_p95_s']:.2f} |" for name, r in phases.items()]
    return head + "\n".join(rows) + "\n"


def update_readme(path: Path, body: str) -> None:
    """Replace (or append) this benchmark's section; other sections are left as they are."""
    text = path.read_text() if path.exists() else "# privtune benchmarks\n\nMeasured results, newest first per section.\n"
    start = text.find(SECTION)
    if start >= 0:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body.rstrip("\n") + "\n\n" + (text[nxt + 1:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text if text.endswith("\n") else text + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=16, help="requests per phase round")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--burst", type=int, default=50, help="concurrent requests in the burst phase (0 = skip)")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server (1: the machine is shared)")
    ap.add_argument("--batch", type=int, default=16, help="--max-batch-size of the batched server")
    ap.add_argument("--rounds", type=int, default=2, help="alternating baseline/batched rounds")
    ap.add_argument("--guard", action="store_true", help="run the batched server with the output guard on")
    ap.add_argument("--port", type=int, default=18431)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "serve_load.json")
    ap.add_argument("--readme", default=str(REPO / "bench" / "README.md"))
    args = ap.parse_args()

    from privtune.offline import go_offline

    go_offline()
    with tempfile.TemporaryDirectory(prefix="privtune-bench-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "PRIVTUNE_HOME": str(tmp / "home"), "PRIVTUNE_LOG": "WARNING"}
        os.environ["PRIVTUNE_HOME"] = env["PRIVTUNE_HOME"]
        if "PRIVTUNE_MODELS_DIR" not in env and (REPO / ".cache" / "test-models").is_dir():
            env["PRIVTUNE_MODELS_DIR"] = os.environ["PRIVTUNE_MODELS_DIR"] = str(REPO / ".cache" / "test-models")
        print("building adapters on the packaged base …", flush=True)
        runs = make_runs(tmp / "runs")
        from privtune.serve.auth import add_key

        keys = tmp / "keys.json"
        key = add_key(keys, "bench", ["*"], "100000/min")
        log = tmp / "server.log"
        baseline_rounds, batched_rounds, burst = [], [], None
        for r in range(args.rounds):
            for name, batch in (("baseline", 1), ("batched", args.batch)):
                print(f"round {r + 1}/{args.rounds}: {name} (max batch {batch}) …", flush=True)
                with Server(runs, keys, args.port, env, batch, args.threads, args.guard and batch > 1, log):
                    res = asyncio.run(drive(args.port, key, args.requests, args.concurrency, args.max_tokens))
                    print(f"  {res['tokens_per_s']} tok/s, {res['errors']} errors", flush=True)
                    (baseline_rounds if batch == 1 else batched_rounds).append(res)
                    if batch > 1 and r == args.rounds - 1 and args.burst:
                        print(f"burst: {args.burst} concurrent streaming requests …", flush=True)
                        burst = asyncio.run(drive(args.port, key, args.burst, args.burst, args.max_tokens))
                        print(f"  {burst['tokens_per_s']} tok/s, {burst['errors']} errors", flush=True)
        server_log = log.read_text(errors="replace")[-2000:]

    phases = {f"baseline (one at a time), c={args.concurrency}": merge_rounds(baseline_rounds),
              f"batched (max batch {args.batch}), c={args.concurrency}": merge_rounds(batched_rounds)}
    if burst:
        phases[f"batched burst, c={args.burst}"] = burst
    base_r, batch_r = phases[list(phases)[0]], phases[list(phases)[1]]
    speedup = batch_r["tokens_per_s"] / base_r["tokens_per_s"] if base_r["tokens_per_s"] else float("nan")
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch_threads": args.threads, "python": platform.python_version(),
               "load_avg_1m": round(os.getloadavg()[0], 2)}
    try:
        machine["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                              if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "args": vars(args) | {"json": str(args.json)},
              "machine": machine, "phases": phases, "speedup_tokens_per_s": round(speedup, 2),
              "burst_errors": burst["errors"] if burst else None}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(table(phases))
    print(f"speed-up (tokens/s, batched vs baseline, c={args.concurrency}): {speedup:.2f}x")
    if any(p["errors"] for p in phases.values()):
        print("errors:", [p.get("error_samples") for p in phases.values()], "\nserver log tail:\n", server_log)
    if args.readme:
        body = (f"{SECTION}\n\n"
                f"{result['date'][:10]}, packaged SmolLM2-135M-Instruct (float32) with two LoRA adapters (r=16) "
                f"served together, on {machine['cores']} CPU cores ({machine['cpu']}), {args.threads} torch threads, "
                f"1-minute load average {machine['load_avg_1m']} at the end (other jobs shared the machine). "
                f"Streaming chat requests through the `openai` client, round-robin over both adapters and the "
                f"base, greedy, max_tokens={args.max_tokens}; {args.rounds} alternating rounds of {args.requests} "
                f"requests per phase; output guard {'on' if args.guard else 'off'} in the batched phases.\n\n"
                f"{table(phases)}\n"
                f"**Batched vs one-at-a-time at concurrency {args.concurrency}: {speedup:.2f}x tokens/s**"
                + (f" (per round: {', '.join(f'{b / a:.2f}x' for a, b in zip(base_r['rounds_tokens_per_s'], batch_r['rounds_tokens_per_s'], strict=True))})"
                   if "rounds_tokens_per_s" in base_r else "") + ". "
                + (f"Burst of {args.burst} concurrent streams: {burst['errors']} errors. " if burst else "")
                + "Raw numbers: `bench/results/serve_load.json`. Rerun: `.venv/bin/python bench/serve_load.py`.\n")
        update_readme(Path(args.readme), body)
    return 0 if not any(p["errors"] for p in phases.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
