"""Privacy-audit benchmark: train SmolLM2-135M (packaged) on a small ticket set holding canaries inserted 10x and
1x, with and without DP-SGD, and run `privtune audit` with its defaults (10,000 candidates per canary, 5 controls).
Writes bench/results/audit_canaries.json; the numbers go to bench/README.md ("Privacy audit").

    .venv/bin/python bench/audit_canaries.py [--threads 1] [--no-dp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

TICKETS = (
    "My card was stolen yesterday, please block it.", "I was charged a fee twice this month, can you refund it?",
    "The transfer to my landlord failed, what happened?", "Please update my address, I moved to a new flat.",
    "Someone used my card abroad, I did not make these payments.", "I cannot log in to online banking since today.",
)
LABELS = ("card_lost", "fee_dispute", "transfer_failed", "address_change", "fraud_report", "account_locked")


def records(start: int, n: int) -> list[dict]:
    return [{"id": f"t{i}", "messages": [{"role": "user", "content": TICKETS[i % 6]},
                                         {"role": "assistant", "content": LABELS[i % 6]}], "metadata": {}}
            for i in range(start, start + n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-dp", action="store_true")
    ap.add_argument("--dp-only", action="store_true")
    ap.add_argument("--candidates", type=int, default=10_000)
    args = ap.parse_args()

    from privtune import fsio
    from privtune.audit.canaries import insert_canaries
    from privtune.audit.report import audit
    from privtune.config import AuditConfig, DPConfig, TrainConfig
    from privtune.offline import go_offline
    from privtune.train.sft import train

    go_offline()
    work = Path(tempfile.mkdtemp(prefix="privtune-bench-audit-"))
    os.environ.setdefault("PRIVTUNE_HOME", str(work / "home"))
    data = work / "data"
    fsio.ensure_private_dir(data)
    fsio.write_jsonl(data / "train.jsonl", records(0, 12))
    fsio.write_jsonl(data / "val.jsonl", records(12, 6))
    fsio.write_jsonl(data / "test.jsonl", records(18, 12))
    entry = insert_canaries(data / "train.jsonl", 4, 0, data, repeats=(10, 1), rng=random.Random(2026))
    fsio.write_json(data / "manifest.json", {"sources": [], "canaries": entry})

    variants = {"no DP": {}, "DP ε=8": {"dp": DPConfig(epsilon=8.0)}}
    if args.no_dp:
        variants.pop("DP ε=8")
    if args.dp_only:
        variants.pop("no DP")
    out = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "threads": args.threads, "load_avg_start": os.getloadavg()[0]},
           "data": {"train_records": 12, "canaries": entry["by_repeats"], "canary_records": entry["records"]},
           "runs": {}}
    for name, extra in variants.items():
        t0 = time.perf_counter()
        run_dir = work / name.replace(" ", "_").replace("ε=", "eps")
        cfg = TrainConfig(epochs=1, batch_size=4, learning_rate=4e-3, max_seq_len=128, log_every=4,
                          num_threads=args.threads, warmup_ratio=0.0, **extra)
        run = train(data, run_dir, cfg)
        t_train = time.perf_counter() - t0
        rep = audit(run_dir, None, AuditConfig(canary_candidates=args.candidates, num_threads=args.threads))
        res = rep["canaries"]["results"]
        out["runs"][name] = {
            "train_s": round(t_train, 1), "steps": run.get("steps"), "best_val_loss": run.get("best_val_loss"),
            "initial_val_loss": run.get("initial_val_loss"), "dp_epsilon": (run.get("dp") or {}).get("epsilon"),
            "exposure": {r["id"]: {"repeats": r["repeats"], "bits": r["exposure"], "rank": r["rank"],
                                   "candidates": r["candidates"]} for r in res},
            "membership": rep["membership"].get("attacks"), "regurgitated": rep["regurgitation"]["regurgitated"],
            "detections": rep["regurgitation"]["detections"], "gates": {k: v["passed"] for k, v in rep["gates"].items()
                                                                       if k != "passed"},
            "audit_timings": rep["timings"]}
        print(name, json.dumps(out["runs"][name], indent=1, ensure_ascii=False), flush=True)
        out["machine"]["load_avg_end"] = os.getloadavg()[0]
        dest = Path(__file__).parent / "results" / "audit_canaries.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")  # after each variant: partial results
        print(f"wrote {dest}", flush=True)


if __name__ == "__main__":
    main()
