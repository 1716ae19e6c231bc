"""data_card.md / data_card.html: what is in a prepared dataset and how it was made, from its manifest alone.

Counts, hashes, settings and plots of counts only, never record text, so the card can travel with audit
papers. The HTML is self-contained (plots embedded as base64 PNG); the PNGs are also written beside it.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from privtune.data.split import SPLITS

LENGTH_BINS = (0, 20, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
PLOTS = {"lengths": "data_card_lengths.png", "redaction": "data_card_redaction.png",
         "categories": "data_card_categories.png"}


def length_histogram(lengths: dict[str, list[int]]) -> dict[str, Any] | None:
    """Token-length histogram per split on fixed bins, plus summary statistics (from the lengths gate)."""
    if not any(lengths.values()):
        return None
    import numpy as np

    edges = [*LENGTH_BINS, max(LENGTH_BINS[-1] + 1, max(max(v) for v in lengths.values() if v) + 1)]
    out: dict[str, Any] = {"unit": "tokens", "bins": edges, "counts": {}, "stats": {}}
    for s, vals in lengths.items():
        if not vals:
            continue
        arr = np.asarray(vals)
        out["counts"][s] = np.histogram(arr, bins=edges)[0].tolist()
        out["stats"][s] = {"min": int(arr.min()), "p50": int(np.percentile(arr, 50)),
                           "p95": int(np.percentile(arr, 95)), "max": int(arr.max()), "mean": round(float(arr.mean()), 1)}
    return out


def write_plots(out_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """PNG plots (matplotlib, Agg) of lengths, redactions and categories; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from privtune import fsio

    written = []

    def save(fig, name: str) -> None:
        import io

        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        fsio.write_bytes(out_dir / name, buf.getvalue())
        written.append(name)

    lengths = manifest.get("lengths")
    if lengths:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        edges = lengths["bins"]
        labels = [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        width = 0.8 / max(1, len(lengths["counts"]))
        for k, (s, counts) in enumerate(lengths["counts"].items()):
            ax.bar([i + k * width for i in range(len(counts))], counts, width=width, label=s)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=45, fontsize=7)
        ax.set_xlabel("tokens per record")
        ax.set_ylabel("records")
        ax.set_title("Record length (base model tokenizer)")
        ax.legend()
        save(fig, PLOTS["lengths"])
    red = manifest.get("redaction") or {}
    if red:
        items = sorted(red.items(), key=lambda kv: kv[1])
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1.2))
        ax.barh([k for k, _ in items], [v for _, v in items], color="#b5533c")
        ax.set_xlabel("spans replaced")
        ax.set_title("Redactions by entity type")
        save(fig, PLOTS["redaction"])
    by_cat = manifest["counts"].get("by_category") or {}
    cats = sorted({c for per in by_cat.values() for c in per})
    if cats:
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(cats) + 1.2))
        left = [0] * len(cats)
        for s in SPLITS:
            vals = [by_cat.get(s, {}).get(c, 0) for c in cats]
            ax.barh(cats, vals, left=left, label=s)
            left = [a + b for a, b in zip(left, vals, strict=True)]
        ax.set_xlabel("records")
        ax.set_title("Records per category and split")
        ax.legend()
        save(fig, PLOTS["categories"])
    return written


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out + [""]


def render_data_card(manifest: dict[str, Any]) -> str:
    c, cfg = manifest["counts"], manifest["config"]
    split, redactor = manifest.get("split", {}), manifest.get("redactor", {})
    lines = [
        "# Data card", "",
        f"Prepared by privtune {manifest['privtune_version']} on {manifest['created_at']}. "
        "Every number below comes from `manifest.json`, which also holds the sha256 of every file.", "",
        "## Summary", "",
    ]
    lines += _table(["input records", "valid", "rejected", "duplicates removed", "near-duplicates removed", "train",
                     "val", "test"],
                    [[c["input"], c["valid"], c["rejected"], c["duplicates"], c.get("near_duplicates", 0), c["train"],
                      c["val"], c["test"]]])
    lines += ["## Sources", ""]
    lines += _table(["file", "sha256", "lines", "records"],
                    [[s["path"].rsplit("/", 1)[-1], f"`{s['sha256'][:16]}…`", s["n_lines"], s["n_records"]]
                     for s in manifest["sources"]])
    if c.get("by_format"):
        lines += ["Record formats: " + ", ".join(f"{k} {v}" for k, v in sorted(c["by_format"].items())) + ".", ""]

    field = split.get("category_field") or "category"
    lines += ["## Split", "",
              f"Seed {cfg['split']['seed']}, fractions train {cfg['split']['train']:g} / val {cfg['split']['val']:g} / "
              f"test {cfg['split']['test']:g}; "
              + (f"stratified by `metadata.{split['stratified_by']}`." if split.get("stratified_by")
                 else "not stratified.")
              + (f" ({split['note']})" if split.get("note") else ""), ""]
    by_cat = c.get("by_category", {})
    cats = sorted({k for per in by_cat.values() for k in per})
    if cats:
        lines += [f"Records per `metadata.{field}`:", ""]
        lines += _table([field, *SPLITS, "total"],
                        [[cat, *(by_cat.get(s, {}).get(cat, 0) for s in SPLITS),
                          sum(by_cat.get(s, {}).get(cat, 0) for s in SPLITS)] for cat in cats])

    bal = manifest.get("balance")
    if bal and bal.get("weights"):
        lines += [f"Oversampling weights for training (inverse frequency in train, capped at {bal['max_weight']:g}):", ""]
        lines += _table([bal.get("field") or "class", "weight"], sorted(bal["weights"].items()))
    lengths = manifest.get("lengths")
    if lengths:
        lines += ["## Lengths", "", f"Tokens per record with the tokenizer of "
                  f"`{(manifest.get('quality') or {}).get('tokenizer', {}).get('name', 'the base model')}`:", ""]
        lines += _table(["split", "min", "median", "p95", "max", "mean"],
                        [[s, v["min"], v["p50"], v["p95"], v["max"], v["mean"]] for s, v in lengths["stats"].items()])
    dd = manifest.get("dedup") or {}
    if dd.get("near"):
        lines += ["## Near-duplicates", "",
                  f"MinHash LSH (datasketch), Jaccard ≥ {dd['threshold']:g} on word {dd['ngram']}-grams, "
                  f"{dd['num_perm']} permutations: {dd['clusters']} clusters, {dd['removed']} records removed "
                  "(the first of each cluster is kept; ids in `manifest.json` under `dedup.clusters_listed`).", ""]
        if dd.get("cluster_sizes"):
            lines += _table(["cluster size", "clusters"], sorted(dd["cluster_sizes"].items(), key=lambda kv: int(kv[0])))

    lines += ["## Rejected records", ""]
    if c["rejected"]:
        lines += ["Each rejection is listed in `rejected.jsonl` with file:line, field and reason (no record text).", ""]
        lines += _table(["reason", "records"], sorted(c["rejected_by_reason"].items(), key=lambda kv: -kv[1]))
    else:
        lines += ["None.", ""]

    lines += ["## Redaction", ""]
    if redactor.get("enabled"):
        lines += [f"Personal data was replaced ({redactor['operator']}) by privtune's recognizers "
                  f"and the NER of spaCy model `{redactor['spacy_model']}`, score threshold {redactor['score_threshold']:g}. "
                  "Counts are over the records kept in the splits.", ""]
        red = manifest.get("redaction", {})
        lines += _table(["entity", "replaced"], sorted(red.items(), key=lambda kv: -kv[1])) if red else [
            "Nothing was detected.", ""]
        lines += ["Automated redaction misses some personal data and removes some harmless text. "
                  "`review.csv` holds a seeded sample of redacted records for a person to check "
                  "(fill in `reviewer_verdict` and `reviewer_notes`). Organisation names are redacted only when "
                  "ORGANIZATION is listed in `redact.entities`, "
                  "and `metadata` values are passed through as given.", ""]
    else:
        lines += ["**Redaction was disabled** (`--no-redact`): the splits hold the input text as given. "
                  "`review.csv` is empty.", ""]
    lines += ["## Files", ""]
    lines += _table(["file", "sha256"], [[name, f"`{sha}`"] for name, sha in sorted(manifest["files"].items())])
    return "\n".join(lines)


def _md_to_html(md: str) -> str:
    """The card's own small Markdown subset (headings, tables, paragraphs, `code`, **bold**) as HTML."""
    import re

    out, table = [], []

    def inline(t: str) -> str:
        t = html.escape(t)
        t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
        return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)

    def flush() -> None:
        if table:
            rows = [r for r in table if not re.fullmatch(r"\|(?:-+\|)+", r)]
            cells = [[c.strip() for c in r.strip("|").split("|")] for r in rows]
            out.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in cells[0]) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in cells[1:])
                       + "</tbody></table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.startswith("# "):
            out.append(f"<h1>{inline(line[2:])}</h1>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "\n".join(out)


def render_data_card_html(manifest: dict[str, Any], out_dir: Path) -> str:
    """Self-contained HTML: the Markdown card plus the PNG plots embedded as base64."""
    body = _md_to_html(render_data_card(manifest))
    figs = []
    for name in manifest.get("plots", []):
        data = base64.b64encode((Path(out_dir) / name).read_bytes()).decode("ascii")
        figs.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(name)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;"
             "font-size:14px}th{background:#f3f3f3}code{background:#f3f3f3;padding:0 3px}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Data card</title><style>{style}</style>"
            f"</head><body>{body}<h2>Plots</h2>{''.join(figs) or '<p>No plots.</p>'}</body></html>\n")
