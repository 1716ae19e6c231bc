"""`prepare` at scale: records/s and peak RSS for N short synthetic records (each run in a fresh process).

Records are short support tickets (system prompt, a user message with a name, an email, a phone number and
an account number, a label as the answer), mostly unique. Peak RSS is the prepare process's own maximum
(ru_maxrss) plus the largest worker's (RUSAGE_CHILDREN), measured after the run; peak_pss_sum_mib is the largest
sum of PSS over the prepare process and its workers (sampled every 5 s), the whole job's footprint.

    .venv/bin/python bench/prepare_scale.py --n 100000 --workers 2
    .venv/bin/python bench/prepare_scale.py --n 1000000 --no-redact      # the memory bound, without redaction

Results are appended to bench/results/prepare_scale.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["card_lost", "fraud_report", "fee_dispute", "address_change", "loan_question", "transfer_failed"]
TOPICS = {"card_lost": "my card is gone since {d} and I need a new one", "fraud_report": "there are {k} payments I "
          "never made on my statement", "fee_dispute": "you charged me a fee of {k} euros that I dispute",
          "address_change": "I moved on {d} and need to update my address", "loan_question": "what rate would a "
          "loan of {k} thousand over {d} months have", "transfer_failed": "my transfer of {k} euros failed on {d}"}


def write_input(path: Path, n: int, seed: int = 0) -> None:
    from faker import Faker

    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    names = [fake.name() for _ in range(5000)]
    domains = ["example.com", "example.org", "mail.example.net", "corp.example"]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            label = LABELS[rng.randrange(len(LABELS))]
            name = names[rng.randrange(len(names))]
            user = (f"Hello, this is {name}. Ticket {i}: {TOPICS[label].format(d=rng.randint(1, 28), k=rng.randint(2, 900))}. "
                    f"Email {name.split()[0].lower()}{rng.randint(1, 999)}@{rng.choice(domains)} or call "
                    f"+1 415 555 {rng.randint(1000, 9999)}; account {rng.randint(10**7, 10**8 - 1)}.")
            rec = {"messages": [{"role": "system", "content": "Classify the bank ticket. Answer with the label."},
                                {"role": "user", "content": user}, {"role": "assistant", "content": label}],
                   "metadata": {"category": label}}
            fh.write(json.dumps(rec) + "\n")


def pss_with_children() -> int:
    """Bytes of proportional set size of this process plus its worker processes. RSS summed over processes
    counts the pages forked workers still share with their parent (spaCy, Python, libraries) once per process;
    PSS splits each shared page between its sharers, so the sum is what the machine actually holds."""
    pids = [os.getpid()]
    for children in Path("/proc/self/task").glob("*/children"):
        pids += [int(x) for x in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:  # a worker that just exited
            continue
    return total


def run_one(n: int, workers: int, redact: bool, near: bool, out_json: Path) -> dict:
    """In this process: prepare N records, report timing and peak memory."""
    from privtune.config import PrepareConfig
    from privtune.data.prepare import prepare

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        src = Path(d) / "in.jsonl"
        t0 = time.perf_counter()
        write_input(src, n)
        gen_s = time.perf_counter() - t0
        cfg = PrepareConfig(redact={"enabled": redact, "workers": workers}, dedup={"near": near})
        t0 = time.perf_counter()
        samples: list[tuple[float, int]] = []
        pss_peak = [0]
        done = threading.Event()

        def sample() -> None:  # this process's RSS every second: where in the run the peak is
            tick = 0
            while not done.wait(1.0):
                with open("/proc/self/statm") as fh:
                    samples.append((time.perf_counter() - t0, int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")))
                tick += 1
                if tick % 5 == 0:  # smaps_rollup walks every mapping: every 5 s is enough
                    pss_peak[0] = max(pss_peak[0], pss_with_children())

        if os.path.exists("/proc/self/statm"):
            threading.Thread(target=sample, daemon=True).start()
        manifest = prepare([src], Path(d) / "ds", cfg)
        secs = time.perf_counter() - t0
        done.set()
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    c = manifest["counts"]
    result = {"date": time.strftime("%Y-%m-%d %H:%M"), "n": n, "workers": workers, "redact": redact, "near_dedup": near,
              "seconds": round(secs, 1), "records_per_s": round(n / secs, 1), "peak_rss_mib": round(self_kb / 1024),
              "peak_worker_rss_mib": round(child_kb / 1024), "peak_pss_sum_mib": round(pss_peak[0] / 2**20),
              "input_gen_s": round(gen_s, 1),
              "counts": {k: c[k] for k in ("train", "val", "test", "rejected", "duplicates", "near_duplicates")},
              "cpu_count": os.cpu_count(), "loadavg_end": round(os.getloadavg()[0], 2),
              # main-process RSS (MiB) at each tenth of the run
              "rss_mib_by_tenth": [round(max((r for t, r in samples if k * secs / 10 <= t < (k + 1) * secs / 10),
                                             default=0) / 2**20) for k in range(10)]}
    with open(out_json, "a") as fh:
        fh.write(json.dumps(result) + "\n")
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[100_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-redact", action="store_true")
    ap.add_argument("--no-near", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "prepare_scale.jsonl"))
    args = ap.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.child:
        print(json.dumps(run_one(args.n[0], args.workers, not args.no_redact, not args.no_near, Path(args.out))))
        return 0
    for n in args.n:  # one fresh process per size, so peak RSS is that run's own
        cmd = [sys.executable, __file__, "--child", "--n", str(n), "--workers", str(args.workers), "--out", args.out]
        cmd += ["--no-redact"] * args.no_redact + ["--no-near"] * args.no_near
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
