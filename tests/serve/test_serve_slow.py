"""`privtune serve` as users start it: the CLI in a subprocess, the packaged model, the real guard."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from privtune.serve.auth import add_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def packaged_run(packaged_base, tmp_path_factory) -> Path:
    """A LoRA run on the packaged model (small random adapter weights)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from privtune import fsio
    from privtune.models import load_model, load_tokenizer

    out = tmp_path_factory.mktemp("packaged-run") / "support"
    torch.manual_seed(0)
    model = get_peft_model(load_model(packaged_base), LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj",
                                                                                                      "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1e-3)
    model.save_pretrained(out / "adapter")
    load_tokenizer(packaged_base).save_pretrained(out / "adapter")
    fsio.write_json(out / "run.json", {"status": "finished", "method": "lora", "adapter_name": "support",
                                       "config": {"base": None}, "base": packaged_base.to_dict(),
                                       "adapter_sha256": fsio.sha256_dir(out / "adapter")})
    return out


@pytest.mark.slow
def test_cli_serve_packaged_model_with_guard(packaged_run, tmp_path, _private_home):
    keys = tmp_path / "keys.json"
    key = add_key(keys, "crm", ["support", "SmolLM2-135M-Instruct"], "100/min")
    port = _free_port()
    env = {**os.environ, "PRIVTUNE_LOG": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "privtune.cli", "serve", "--adapter", f"support={packaged_run}",
                             "--keys", str(keys), "--port", str(port), "--threads", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "server did not start"
            time.sleep(0.5)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=300)
        msgs = [{"role": "user", "content": "Write one sentence telling Anna Smith (anna.smith@example.com) that "
                                            "her new card is on its way."}]
        r = client.chat.completions.create(model="support", messages=msgs, max_tokens=40, temperature=0)
        assert r.choices[0].message.content.strip() and r.usage.completion_tokens > 0
        assert "anna.smith@example.com" not in r.choices[0].message.content  # the guard is on by default
        chunks = list(client.chat.completions.create(model="SmolLM2-135M-Instruct", messages=msgs, max_tokens=20,
                                                     temperature=0, stream=True))
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="legal", messages=msgs, max_tokens=2)
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, out[-2000:]
    rows = [json.loads(x) for x in (_private_home / "serve" / "requests.jsonl").read_text().splitlines()]
    assert [r["status"] for r in rows if r["endpoint"] == "chat"] == [200, 200, 404]
    assert all(r["key"] == "crm" for r in rows) and "Anna" not in json.dumps(rows)


def test_cli_serve_refuses_bad_input_before_loading_anything(tmp_path):
    from typer.testing import CliRunner

    from privtune.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["serve", "--keys", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "no active API key" in res.output
    keys = tmp_path / "keys.json"
    add_key(keys, "a", ["*"])
    res = runner.invoke(app, ["serve", "--keys", str(keys), "--adapter", "bad name=/nowhere"])
    assert res.exit_code == 2 and "adapter name" in res.output
    res = runner.invoke(app, ["serve", "--keys", str(keys), "--adapter", f"x={tmp_path / 'missing'}"])
    assert res.exit_code == 2 and "run directory not found" in res.output
