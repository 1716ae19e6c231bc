"""Training speed on CPU: privtune's LoRA SFT vs TRL SFTTrainer (its defaults) vs the naive Trainer recipe.

Same packaged model (SmolLM2-135M-Instruct, float32 weights), same LoRA (r=16, alpha=32, dropout 0, the seven
attention+MLP projections), same records, same number of optimizer steps, same batch size and peak learning rate,
one run of this script. Each system trains in its own subprocess (peak RSS is that process's ru_maxrss, taken
right after training, before the shared val-loss evaluation); they run one after another, never together.

- privtune: `privtune.train.sft.train` (its defaults: loss on assistant tokens with the LM head only at those
  positions, length-grouped batches padded to the longest row, cosine schedule with warmup).
- trl: `trl.SFTTrainer` + `SFTConfig` with TRL's defaults (on this version: bf16 autocast, gradient
  checkpointing, loss on every token of a `messages` record, no packing, linear schedule); only the LoRA config,
  max_steps, batch size, learning rate and seed are set, plus use_cpu=True (without it the bf16 default refuses
  to start on a CPU). The model is passed as a path, as TRL's docs do.
- naive: `transformers.Trainer` on chat-template text tokenised with padding="max_length" (512), labels = ids
  with padding masked, float32, default Trainer settings.

Metrics (definitions also in bench/README.md):
- supervised tok/s = answer tokens the run learnt from / training-loop seconds. Every system sees steps × batch
  records; the answer-token count is steps × batch × the mean answer tokens per train record (the same for all).
- CPU s = user+sys CPU seconds of the training loop's process (robust to other jobs on a shared machine).
- val loss = mean next-token loss over the answer tokens of the val records, computed by the same function for
  all three (privtune's chat-template tokenisation + full logits), after training.
- MFU = model FLOPs / training-loop seconds / measured fp32 GEMM FLOP/s (torch.matmul, same thread count).
  Model FLOPs of a LoRA step = 4 · N · T: forward 2·N·T plus the backward pass through the frozen weights for
  activation gradients 2·N·T (no weight gradients for frozen weights), N = parameters in matmuls (decoder +
  LM head = 134.5M), T = real (non-padding) tokens. Attention score FLOPs and the LoRA matrices (<2%) are left
  out. The same useful work counts for every system, so padding and recomputation lower a system's MFU.

    .venv/bin/python bench/train_speed.py                  # the run recorded in bench/README.md
    .venv/bin/python bench/train_speed.py --steps 2 --readme ''   # smoke test, README untouched
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results" / "train_speed.json"
README = REPO / "bench" / "README.md"
SECTION = "## Training speed: `bench/train_speed.py`"
LORA = {"r": 16, "alpha": 32, "dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
SYSTEM = "Classify the customer's banking query. Answer with the intent label only."


# ------------------------------------------------------------------------------------------- data
def banking77_records(n_train: int, n_val: int, seed: int) -> tuple[list[dict], list[dict], str]:
    def rows(name: str) -> list[dict]:
        with open(SHARED / "banking77" / name, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    rng = random.Random(seed)
    train, test = rows("train.csv"), rows("test.csv")
    rng.shuffle(train)
    rng.shuffle(test)

    def chat(i: int, r: dict) -> dict:
        return {"id": f"b{i}", "messages": [{"role": "system", "content": SYSTEM},
                                            {"role": "user", "content": r["text"]},
                                            {"role": "assistant", "content": r["category"]}], "metadata": {}}

    return ([chat(i, r) for i, r in enumerate(train[:n_train])],
            [chat(10_000 + i, r) for i, r in enumerate(test[:n_val])], "banking77 (../shared/data)")


def bundled_records(n_train: int, n_val: int, seed: int) -> tuple[list[dict], list[dict], str]:
    from privtune.examples import example_path

    rows = [json.loads(line) for line in example_path("bank_replies").read_text().splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    recs = [{"id": r["id"], "messages": [{"role": "user", "content": f"{r['instruction']}\n\n{r['input']}"},
                                         {"role": "assistant", "content": r["output"]}], "metadata": {}}
            for r in rows]
    n_val = min(n_val, len(recs) // 5)
    return recs[n_val: n_val + n_train], recs[:n_val], "bundled bank_replies example"


def write_dataset(out: Path, train: list[dict], val: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name, recs in (("train", train), ("val", val)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (out / "manifest.json").write_text(json.dumps({"counts": {"train": len(train), "val": len(val)}}))
    return out


# ------------------------------------------------------------------------------------------- measurements
def gemm_flops(threads: int, seconds: float = 1.5) -> float:
    """Best fp32 torch.matmul FLOP/s over a few square and model-shaped sizes, at the benchmark's thread count."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for m, k, n in ((512, 576, 1536), (1024, 1024, 1024), (2048, 2048, 2048), (256, 576, 576)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t0))
    return best


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def answer_val_loss(model, tokenizer, val: list[dict]) -> float:
    """The shared yardstick: mean loss over the answer tokens of the val records (full logits)."""
    import torch

    from privtune.train.collate import collate, encode_records, sorted_batches
    from privtune.train.loss import full_logits_loss
    from privtune.train.records import ChatRecord

    recs = [ChatRecord(r["id"], tuple(r["messages"]), r["id"]) for r in val]
    examples, _ = encode_records(tokenizer, recs, 512)
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for idx in sorted_batches([len(e) for e in examples], 16):
            s, k = full_logits_loss(model, collate([examples[i] for i in idx], tokenizer.pad_token_id))
            total, n = total + float(s), n + k
    return total / n


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------- workers
def worker_privtune(a, base, data: Path, work: Path, **extra) -> dict:
    from privtune.config import TrainConfig
    from privtune.train.sft import train

    extra = {"cpu_malloc_mmap_kb": 1024, **extra}  # pays at this batch size (train/README.md: when it does not)
    cfg = TrainConfig(base=base.path, max_steps=a.steps, batch_size=a.batch_size, learning_rate=a.lr,
                      max_seq_len=512, num_threads=a.threads, seed=a.seed, log_every=a.steps, lora=LORA, **extra)
    c0 = cpu_seconds()
    run = train(data, work / "run", cfg)
    rss = peak_rss_mb()
    return {"train_s": run["timings"]["train_s"], "cpu_s": cpu_seconds() - c0, "peak_rss_mb": rss,
            "val_loss": run["final_val_loss"], "total_s": run["timings"]["total_s"], "steps": run["steps"],
            "exact_supervised_tokens": run["supervised_tokens"], "loss_mode": run["loss_mode"]}


def _lora_peft():
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                      target_modules=LORA["target_modules"], bias="none")


class _Clock:
    """TrainerCallback timing of the training loop (train begin → end) and its CPU seconds."""

    def __init__(self):
        from transformers import TrainerCallback

        clock = self

        class CB(TrainerCallback):
            def on_train_begin(self, *a, **k):
                clock.t0, clock.c0 = time.perf_counter(), cpu_seconds()

            def on_train_end(self, *a, **k):
                clock.t1, clock.c1 = time.perf_counter(), cpu_seconds()

        self.callback = CB()

    def result(self) -> tuple[float, float]:
        return self.t1 - self.t0, self.c1 - self.c0


def worker_trl(a, base, data: Path, work: Path) -> dict:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from privtune.models import load_tokenizer

    t_start = time.perf_counter()
    train = [{"messages": r["messages"]} for r in read_jsonl(data / "train.jsonl")]
    args = SFTConfig(output_dir=str(work / "trl"), max_steps=a.steps, per_device_train_batch_size=a.batch_size,
                     learning_rate=a.lr, seed=a.seed, report_to="none", save_strategy="no", push_to_hub=False,
                     logging_steps=a.steps, use_cpu=True)  # without use_cpu TRL's bf16 default refuses a CPU
    clock = _Clock()
    trainer = SFTTrainer(model=base.path, args=args, train_dataset=Dataset.from_list(train),
                         processing_class=load_tokenizer(base), peft_config=_lora_peft(), callbacks=[clock.callback])
    trainer.train()
    rss = peak_rss_mb()
    train_s, cpu_s = clock.result()
    val = answer_val_loss(trainer.model, load_tokenizer(base), read_jsonl(data / "val.jsonl"))
    return {"train_s": train_s, "cpu_s": cpu_s, "peak_rss_mb": rss, "val_loss": val,
            "total_s": time.perf_counter() - t_start, "steps": trainer.state.global_step,
            "settings": {"bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
                         "assistant_only_loss": args.assistant_only_loss, "packing": args.packing,
                         "lr_scheduler": str(args.lr_scheduler_type), "max_length": args.max_length}}


def worker_naive(a, base, data: Path, work: Path) -> dict:
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments, default_data_collator

    from privtune.models import load_model, load_tokenizer

    t_start = time.perf_counter()
    tok = load_tokenizer(base)
    texts = [tok.apply_chat_template(r["messages"], tokenize=False) for r in read_jsonl(data / "train.jsonl")]
    enc = tok(texts, padding="max_length", max_length=512, truncation=True, add_special_tokens=False)
    labels = [[t if m else -100 for t, m in zip(ids, mask, strict=True)]
              for ids, mask in zip(enc["input_ids"], enc["attention_mask"], strict=True)]
    ds = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    model = get_peft_model(load_model(base), _lora_peft())
    args = TrainingArguments(output_dir=str(work / "naive"), max_steps=a.steps, per_device_train_batch_size=a.batch_size,
                             learning_rate=a.lr, seed=a.seed, report_to="none", save_strategy="no",
                             logging_steps=a.steps)
    clock = _Clock()
    trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=default_data_collator,
                      callbacks=[clock.callback])
    trainer.train()
    rss = peak_rss_mb()
    train_s, cpu_s = clock.result()
    val = answer_val_loss(trainer.model, tok, read_jsonl(data / "val.jsonl"))
    return {"train_s": train_s, "cpu_s": cpu_s, "peak_rss_mb": rss, "val_loss": val,
            "total_s": time.perf_counter() - t_start, "steps": trainer.state.global_step}


def worker_privtune_gc(a, base, data: Path, work: Path) -> dict:
    """privtune with activation checkpointing: the memory-saving option, for the RSS comparison."""
    return worker_privtune(a, base, data, work, gradient_checkpointing=True)


def worker_privtune_lowmem(a, base, data: Path, work: Path) -> dict:
    """privtune's low-memory settings: frozen weights in bf16, activation checkpointing, 384 KB mmap threshold
    (measured: 256 KB 879 MB / 45.3 s, 384 KB 874 MB / 45.5 s, 512 KB 1003 MB / 31 s)."""
    return worker_privtune(a, base, data, work, gradient_checkpointing=True, frozen_weights="bfloat16",
                           cpu_malloc_mmap_kb=384)


def worker_privtune_bf16(a, base, data: Path, work: Path) -> dict:
    """privtune with only the frozen weights in bf16 (upcast per layer): the memory it saves at full speed."""
    return worker_privtune(a, base, data, work, frozen_weights="bfloat16")


def worker_profile(a, base, data: Path, work: Path) -> dict:
    """Where a privtune training step's time goes (torch.profiler over steps like the privtune row's): the
    frozen base weights' GEMMs, the rank-r LoRA GEMMs, the LM head at label positions, attention, and the rest
    (norms, activations, RoPE, residual adds, LoRA scaling, AdamW, Python)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from privtune.config import TrainConfig
    from privtune.models import load_tokenizer
    from privtune.train.collate import collate, encode_records, sorted_batches
    from privtune.train.loss import make_loss_fn
    from privtune.train.methods import setup_model
    from privtune.train.records import read_records
    from privtune.train.sft import lora_targets

    cfg = TrainConfig(base=base.path, batch_size=a.batch_size, max_seq_len=512, num_threads=a.threads, seed=a.seed,
                      lora=LORA, cpu_malloc_mmap_kb=1024)
    tok = load_tokenizer(base)
    examples, _ = encode_records(tok, read_records(data / "train.jsonl"), 512)
    batches = sorted_batches([len(e) for e in examples], a.batch_size)
    picked = [batches[i] for i in random.Random(a.seed).sample(range(len(batches)), 4)]
    model, _ = setup_model(base, cfg, torch.device("cpu"), lora_targets)
    model.train()
    batches = [collate([examples[i] for i in b], tok.pad_token_id) for b in picked]
    loss_fn, _ = make_loss_fn(model, batches[0])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr)

    def step(batch):
        opt.zero_grad(set_to_none=True)
        s, n = loss_fn(batch)
        (s / n).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    step(batches[0])  # warm-up: first-call allocations and kernel selection
    vocab = model.get_output_embeddings().weight.shape[0]
    t0 = time.perf_counter()
    for b in batches[1:]:  # timed without the profiler's overhead
        step(b)
    wall = (time.perf_counter() - t0) / len(batches[1:])
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for b in batches[1:]:
            step(b)
    cats = {k: [0.0, 0.0] for k in ("base_gemm", "lora_gemm", "lm_head", "attention")}  # [µs, FLOPs]
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key in ("aten::mm", "aten::addmm", "aten::bmm"):
            shapes = [tuple(x) for x in e.input_shapes if len(x) >= 2]
            a_, b_ = shapes[-2], shapes[-1]
            flops = 2 * a_[-2] * a_[-1] * b_[-1] * (a_[0] if len(a_) == 3 else 1) * e.count
            dims = {d for sh in shapes for d in sh}
            cat = "lm_head" if vocab in dims else "lora_gemm" if LORA["r"] in dims else "base_gemm"
            cats[cat][0] += e.self_cpu_time_total
            cats[cat][1] += flops
        elif "scaled_dot_product" in e.key:
            cats["attention"][0] += e.self_cpu_time_total
    total_us = sum(e.self_cpu_time_total for e in prof.key_averages())
    steps = len(batches[1:])
    out = {"step_s": wall, "profiled_us_per_step": total_us / steps,
           "tokens_per_step": sum(int(b["attention_mask"].sum()) for b in batches[1:]) / steps,
           "padded_tokens_per_step": sum(b["input_ids"].numel() for b in batches[1:]) / steps}
    return {**out, **profile_shares(cats, steps, wall)}


def profile_shares(cats: dict, steps: int, step_s: float) -> dict:
    """ms per step and share of the unprofiled step for each part. The big ops' self times barely change under
    the profiler, the many small ones' do (recording overhead), so "other" is the unprofiled step minus the rest."""
    out = {k: {"ms_per_step": us / steps / 1e3, "share": us / steps / 1e6 / step_s,
               "gflops": fl / (us * 1e-6) / 1e9 if us and fl else None} for k, (us, fl) in cats.items()}
    other_ms = step_s * 1e3 - sum(v["ms_per_step"] for v in out.values())
    out["other"] = {"ms_per_step": other_ms, "share": other_ms / 1e3 / step_s, "gflops": None}
    return out


WORKERS = {"privtune": worker_privtune, "privtune_bf16": worker_privtune_bf16, "privtune_gc": worker_privtune_gc,
           "privtune_lowmem": worker_privtune_lowmem, "trl": worker_trl, "naive": worker_naive,
           "profile": worker_profile}


def run_worker(a) -> None:
    import torch

    from privtune.models import resolve_base
    from privtune.offline import go_offline

    go_offline()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    base = resolve_base(None)
    with tempfile.TemporaryDirectory(prefix=f"bench-{a.worker}-") as tmp:
        res = WORKERS[a.worker](a, base, Path(a.data), Path(tmp))
    Path(a.result).write_text(json.dumps(res))


# ------------------------------------------------------------------------------------------- driver
def token_stats(data: Path) -> dict:
    """Mean real tokens and answer tokens per train record (privtune's chat-template tokenisation)."""
    from privtune.models import load_tokenizer, resolve_base
    from privtune.train.collate import encode_records
    from privtune.train.records import read_records

    tok = load_tokenizer(resolve_base(None))
    ex, _ = encode_records(tok, read_records(data / "train.jsonl"), 512)
    return {"mean_tokens": sum(len(e) for e in ex) / len(ex),
            "mean_answer_tokens": sum(e.n_supervised for e in ex) / len(ex),
            "min_tokens": min(len(e) for e in ex), "max_tokens": max(len(e) for e in ex), "records": len(ex)}


def matmul_params() -> int:
    """Parameters used in matmuls: every Linear of the decoder plus the LM head (tied to the embedding here)."""
    import torch

    from privtune.models import load_model, resolve_base

    model = load_model(resolve_base(None))
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--train-records", type=int, default=320)
    p.add_argument("--val-records", type=int, default=32)
    p.add_argument("--systems", default="privtune,privtune_bf16,privtune_gc,privtune_lowmem,trl,naive,profile")
    p.add_argument("--readme", default=str(README), help="README to update ('' = don't)")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return run_worker(a)

    sys.path.insert(0, str(REPO / "src"))
    from privtune.offline import go_offline

    go_offline()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = loadavg()
    if (SHARED / "banking77" / "train.csv").is_file():
        train, val, source = banking77_records(a.train_records, a.val_records, a.seed)
    else:
        train, val, source = bundled_records(a.train_records, a.val_records, a.seed)
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        data = write_dataset(Path(tmp) / "data", train, val)
        stats = token_stats(data)
        if "bf16" in a.systems or "lowmem" in a.systems:  # the bf16 copy of the base is made once, like the cache
            import torch

            from privtune.models import resolve_base
            from privtune.train.memory import load_stored_as

            load_stored_as(resolve_base(None), torch.bfloat16)
        n_matmul = matmul_params()
        peak = [gemm_flops(a.threads)]
        for name in a.systems.split(","):
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, __file__, "--worker", name, "--data", str(data), "--result", str(out),
                   "--steps", str(a.steps), "--batch-size", str(a.batch_size), "--lr", str(a.lr),
                   "--threads", str(a.threads), "--seed", str(a.seed)]
            print(f"[{datetime.now(UTC):%H:%M:%S}] {name} …", flush=True)
            env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "PRIVTUNE_LOG": "WARNING",
                   "TOKENIZERS_PARALLELISM": "false"}
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"{name} failed (exit {proc.returncode})")
            results[name] = json.loads(out.read_text())
            print(f"  {json.dumps(results[name])}", flush=True)
        peak.append(gemm_flops(a.threads))

    gemm = max(peak)
    records = a.steps * a.batch_size
    profile = results.pop("profile", None)
    if profile:  # the step's real-token MFU and the ceiling if everything but the base GEMMs took no time
        useful = 4 * n_matmul * profile["tokens_per_step"]
        profile["mfu_step"] = useful / profile["step_s"] / gemm
        profile["base_gemm_of_peak"] = profile["base_gemm"]["gflops"] * 1e9 / gemm
    for r in results.values():
        sup = records * stats["mean_answer_tokens"]
        real = records * stats["mean_tokens"]
        r["supervised_tok_per_s"] = sup / r["train_s"]
        r["supervised_tok_per_cpu_s"] = sup / r["cpu_s"]
        r["mfu"] = 4 * n_matmul * real / r["train_s"] / gemm
        r["mfu_cpu"] = 4 * n_matmul * real / r["cpu_s"] / gemm  # against CPU time: what the cores did
    report = {"started": started, "finished": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "threads": a.threads, "loadavg_start": load_start, "loadavg_end": loadavg(),
                          "gemm_fp32_gflops": round(gemm / 1e9, 2), "gemm_runs_gflops": [round(x / 1e9, 2) for x in peak]},
              "setup": {"steps": a.steps, "batch_size": a.batch_size, "lr": a.lr, "lora": LORA, "data": source,
                        "train_records": len(train), "val_records": len(val), **stats, "matmul_params": n_matmul},
              "results": results, "profile": profile, "versions": _versions()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    table = render(report)
    print(table)
    if a.readme:
        update_readme(Path(a.readme), table)


def _versions() -> dict:
    from importlib.metadata import version

    return {n: version(n) for n in ("torch", "transformers", "peft", "trl")}


def render(rep: dict) -> str:
    res, m, s = rep["results"], rep["machine"], rep["setup"]
    lines = [SECTION, "",
             f"{rep['started'][:10]}, packaged SmolLM2-135M-Instruct (float32 weights), LoRA r={s['lora']['r']} on "
             f"{len(s['lora']['target_modules'])} projections, {s['steps']} optimizer steps × batch {s['batch_size']}, "
             f"lr {s['lr']}, data: {s['data']} ({s['train_records']} train records of {s['min_tokens']}–"
             f"{s['max_tokens']} tokens, mean {s['mean_tokens']:.1f}, {s['mean_answer_tokens']:.1f} answer tokens; "
             f"{s['val_records']} val records). CPU: {m['cores']} cores ({m['cpu']}), {m['threads']} torch thread "
             f"per run, runs one after another; load average {m['loadavg_start']} → {m['loadavg_end']} "
             f"(shared machine). Measured fp32 GEMM: {m['gemm_fp32_gflops']} GFLOP/s "
             f"(runs: {', '.join(map(str, m['gemm_runs_gflops']))}).", "",
             "| system | train loop s | CPU s | supervised tok/s | per CPU-s | peak RSS MB | val loss | MFU "
             "(wall) | MFU (CPU) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['train_s']:.1f} | {r['cpu_s']:.1f} | {r['supervised_tok_per_s']:.2f} | "
                     f"{r['supervised_tok_per_cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['val_loss']:.4f} | "
                     f"{100 * r['mfu']:.1f}% | {100 * r['mfu_cpu']:.1f}% |")
    if "privtune" in res:
        pt = res["privtune"]
        lines.append("")
        for other in ("privtune_gc", "trl", "naive"):
            if other in res:
                o = res[other]
                lines.append(f"- privtune vs {other}: {o['train_s'] / pt['train_s']:.2f}x faster (wall), "
                             f"{o['cpu_s'] / pt['cpu_s']:.2f}x (CPU s); peak RSS {pt['peak_rss_mb'] / o['peak_rss_mb']:.2f}x; "
                             f"val loss {pt['val_loss']:.4f} vs {o['val_loss']:.4f}")
    for name in ("privtune_bf16", "privtune_lowmem"):
        if name not in res:
            continue
        lm = res[name]
        for other in ("trl", "naive"):
            if other in res:
                o = res[other]
                lines.append(f"- {name} vs {other}: {o['train_s'] / lm['train_s']:.2f}x faster (wall); peak RSS "
                             f"{lm['peak_rss_mb'] / o['peak_rss_mb']:.2f}x; val loss {lm['val_loss']:.4f} vs "
                             f"{o['val_loss']:.4f}")
    prof = rep.get("profile")
    if prof:
        names = {"base_gemm": "GEMMs with the frozen base weights", "lora_gemm": f"LoRA GEMMs (rank {s['lora']['r']})",
                 "lm_head": "LM head at label positions (GEMM)", "attention": "attention (SDPA)",
                 "other": "everything else (norms, SiLU, RoPE, adds, LoRA scaling, AdamW, Python)"}
        lines += ["", f"Where a privtune step's time goes (torch.profiler self times over 3 steps of batch {s['batch_size']}; "
                  "\"everything else\" is the unprofiled step time minus the parts above it; "
                  f"{prof['tokens_per_step']:.0f} real / {prof['padded_tokens_per_step']:.0f} padded tokens per step, "
                  f"{prof['step_s']:.2f} s per step unprofiled = {100 * prof['mfu_step']:.1f} % MFU):", "",
                  "| part | ms per step | share | GFLOP/s |", "|---|---|---|---|"]
        for k, label in names.items():
            c = prof[k]
            rate = "" if c["gflops"] is None else f"{c['gflops']:.1f}"
            lines.append(f"| {label} | {c['ms_per_step']:.0f} | {100 * c['share']:.1f}% | {rate} |")
        lines += ["", f"The base-weight GEMMs themselves run at {prof['base_gemm']['gflops']:.1f} GFLOP/s "
                  f"({100 * prof['base_gemm_of_peak']:.0f} % of the measured peak) but are only "
                  f"{100 * prof['base_gemm']['share']:.0f} % of the step; LoRA's rank-{s['lora']['r']} GEMMs are too "
                  f"thin for the GEMM kernels ({prof['lora_gemm']['gflops']:.1f} GFLOP/s) and the non-GEMM work "
                  f"takes {100 * prof['other']['share']:.0f} %."]
    lines += ["", "Raw numbers: `bench/results/train_speed.json`. Rerun: `.venv/bin/python bench/train_speed.py`."]
    return "\n".join(lines)


def update_readme(path: Path, table: str) -> None:
    """Replace (or append) only this benchmark's section; other sections belong to other benchmarks."""
    text = path.read_text() if path.exists() else "# privtune benchmarks\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        end = len(text) if nxt < 0 else nxt + 1
        text = text[:start] + table + "\n" + ("\n" if nxt >= 0 else "") + text[end:]
    path.write_text(text)


if __name__ == "__main__":
    main()
