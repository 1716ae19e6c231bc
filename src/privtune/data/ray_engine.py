"""`prepare --engine ray`: the redaction stage on Ray Data, for data that outgrows one machine.

The same `Redactor` runs inside Ray actors (one spaCy model per actor) over batches of texts; spans come
back in order, so the outputs are identical to the local engine (tests/data/test_scale.py checks it). Ray is
an optional extra (`pip install 'privtune[ray]'`); it starts a local cluster unless RAY_ADDRESS names one.
Ray's dashboard and usage stats are turned off: privtune never reports anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from privtune.config import RedactConfig
from privtune.data.redact import Redactor, Span
from privtune.errors import InputError


class _SpanActor:
    def __init__(self, cfg_json: str):
        self.redactor = Redactor(RedactConfig.model_validate_json(cfg_json))

    def __call__(self, batch: Any) -> Any:
        allow = list(batch["allow"].iloc[0]) if len(batch) else []
        spans = self.redactor.spans(list(batch["text"]), allow)
        return batch[["b", "i"]].assign(spans=[[[s.start, s.end, s.entity_type, s.score] for s in doc]
                                              for doc in spans])


class RaySpans:
    """SpanPool's interface (`local`, `map`, `close`) backed by Ray Data."""

    def __init__(self, cfg: RedactConfig, workers: int = 1):
        try:
            import ray
        except ImportError:
            raise InputError("--engine ray needs Ray: pip install 'privtune[ray]'", field="engine") from None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.cfg, self.workers = cfg, max(1, workers)
        self.local = Redactor(cfg)
        self._started = False
        if not ray.is_initialized():
            ray.init(num_cpus=max(self.workers, 1), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            self._started = True

    def map(self, batches: Sequence[tuple[list[str], list[str]]]) -> Iterator[list[list[Span]]]:
        """Spans for each (texts, allow terms) batch, in order (rows carry their position; the result is
        re-ordered by it, whatever order Ray returns blocks in)."""
        import ray

        rows = [{"b": b, "i": i, "text": t, "allow": list(allow)} for b, (texts, allow) in enumerate(batches)
                for i, t in enumerate(texts)]
        found: dict[tuple[int, int], list[Span]] = {}
        if rows:
            ds = ray.data.from_items(rows).map_batches(
                _SpanActor, fn_constructor_args=(self.cfg.model_dump_json(),), batch_size=self.cfg.batch_size * 4,
                concurrency=self.workers, batch_format="pandas")
            for res in ds.iter_rows():
                found[(int(res["b"]), int(res["i"]))] = [Span(int(s[0]), int(s[1]), str(s[2]), float(s[3]))
                                                         for s in res["spans"]]
        for b, (texts, _) in enumerate(batches):
            yield [found[(b, i)] for i in range(len(texts))]

    def close(self) -> None:
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
