"""Test helpers: run directories shaped like `privtune train` output, and a real server in a thread."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_run_dir(base_dir: Path, out: Path, seed: int, r: int = 4, use_dora: bool = False) -> Path:
    """A finished run: random (non-zero) LoRA weights so the adapter visibly changes the base's outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from privtune import fsio

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    torch.manual_seed(seed)
    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=LORA_TARGETS,
                                            init_lora_weights=False, use_dora=use_dora))
    peft.save_pretrained(out / "adapter")
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out / "adapter")
    weights = fsio.sha256_file(base_dir / "model.safetensors")
    run = {"status": "finished", "method": "lora", "adapter_name": out.name,
           "config": {"base": str(base_dir), "method": "lora", "lora": {"r": r}},
           "base": {"name": base_dir.name, "path": str(base_dir), "source": str(base_dir),
                    "source_sha256": weights, "weights_sha256": weights},
           "adapter_sha256": fsio.sha256_dir(out / "adapter")}
    (out / "run.json").write_text(json.dumps(run))
    return out


@contextlib.contextmanager
def running_server(served, keys_path: Path, cfg=None, redact_fn=None):
    """A real uvicorn server on a free 127.0.0.1 port in a thread; yields (base_url, state)."""
    import socket
    import threading
    import time

    import uvicorn

    from privtune.config import ServeConfig
    from privtune.serve.app import build_state, create_app

    cfg = cfg or ServeConfig(guard={"enabled": redact_fn is not None})
    state = build_state(served, cfg, keys_path, redact_fn)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(state), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
