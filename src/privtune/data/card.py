"""data_card.md: what is in a prepared dataset and how it was made, rendered from its manifest alone.

Counts, hashes and settings only, never record text, so the card can travel with audit papers.
"""

from __future__ import annotations

from typing import Any

from privtune.data.split import SPLITS


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
    lines += _table(["input records", "valid", "rejected", "duplicates removed", "train", "val", "test"],
                    [[c["input"], c["valid"], c["rejected"], c["duplicates"], c["train"], c["val"], c["test"]]])
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
