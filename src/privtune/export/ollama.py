"""Ollama export: a Modelfile whose Go TEMPLATE renders exactly the prompt the tokenizer's chat template does.

The Jinja chat template is not translated by hand. It is probed: rendering a conversation with marker
contents shows the text around each message (`A role B content E`), the generation prompt and any default
system prompt, for templates of the per-message shape (ChatML and its relatives). The Go template is built from
those pieces, then rendered here by a small Go-template interpreter for sample conversations and compared with
`tokenizer.apply_chat_template` character for character; a mismatch stops the export instead of shipping a
model that is prompted differently from how it was trained.

Ollama inserts the Modelfile's SYSTEM as the first message when a conversation has none, so a default system
prompt baked into the Jinja template becomes SYSTEM, and the comparison applies that same rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from privtune.errors import InputError

MARK = "\u2063{}\u2063"  # invisible separator: never produced by a template itself


@dataclass(frozen=True)
class ChatShape:
    """A template of the form BOS? + Σ (A + role + B + content + E) + G, with an optional default system."""

    prefix: str  # text before the first message (e.g. a BOS string), usually empty
    a: str
    b: str
    e: str
    g: str
    default_system: str | None


def _render(tokenizer, messages: list[dict], gen: bool = True) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)


def probe_shape(tokenizer) -> ChatShape:
    """Recover the per-message pieces of the tokenizer's chat template (InputError if it has another shape)."""
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("the tokenizer has no chat template to export", field="chat_template")
    m = [MARK.format(i) for i in range(4)]
    conv = [{"role": "system", "content": m[0]}, {"role": "user", "content": m[1]},
            {"role": "assistant", "content": m[2]}, {"role": "user", "content": m[3]}]
    try:
        text = _render(tokenizer, conv)
    except Exception as e:  # noqa: BLE001 - template errors are the template's
        raise InputError(f"the chat template cannot render a system/user/assistant conversation ({e})",
                         field="chat_template") from None
    parts = re.split("|".join(re.escape(x) for x in m), text)
    if len(parts) != 5:
        raise InputError("the chat template does not render message contents verbatim", field="chat_template")
    p0, p1, p2, p3, p4 = parts
    k = p0.rfind("system")
    if k < 0:
        raise InputError("the chat template does not write the role name before each message", field="chat_template")
    head, b = p0[:k], p0[k + len("system"):]

    def split_ea(piece: str, role: str) -> str:
        j = piece.rfind(role)
        if j < 0 or piece[j + len(role):] != b:
            raise InputError("the chat template is not of the per-message shape privtune can export (role markers "
                             "differ between roles)", field="chat_template")
        return piece[:j]

    ea = split_ea(p1, "user")
    if split_ea(p2, "assistant") != ea or split_ea(p3, "user") != ea:
        raise InputError("the chat template ends messages differently per role", field="chat_template")
    # head = prefix + A and ea = E + A: any split that satisfies both renders the same text; take the
    # longest common suffix as A
    n = 0
    while n < min(len(head), len(ea)) and head[len(head) - 1 - n] == ea[len(ea) - 1 - n]:
        n += 1
    a = head[len(head) - n:] if n else ""
    prefix, e = head[: len(head) - n], ea[: len(ea) - n]
    if not p4.startswith(e):
        raise InputError("the chat template's generation prompt does not follow a message end", field="chat_template")
    g = p4[len(e):]
    # a default system prompt shows up when the conversation starts with a user message
    user_only = _render(tokenizer, [{"role": "user", "content": m[1]}])
    plain = prefix + a + "user" + b + m[1] + e + g
    default = None
    if user_only != plain:
        lead = prefix + a + "system" + b
        tail = e + a + "user" + b + m[1] + e + g
        if not (user_only.startswith(lead) and user_only.endswith(tail)):
            raise InputError("the chat template adds text privtune cannot place in an Ollama template",
                             field="chat_template")
        default = user_only[len(lead): len(user_only) - len(tail)]
    return ChatShape(prefix, a, b, e, g, default)


def _go_literal(text: str) -> str:
    if "{{" in text or "}}" in text:
        raise InputError("the chat template's markup contains '{{' or '}}', which a Go template cannot hold "
                         "literally", field="chat_template")
    return text


def go_template(shape: ChatShape) -> str:
    """The Ollama TEMPLATE (Go text/template over .Messages)."""
    return (_go_literal(shape.prefix) + "{{ range .Messages }}" + _go_literal(shape.a) + "{{ .Role }}"
            + _go_literal(shape.b) + "{{ .Content }}" + _go_literal(shape.e) + "{{ end }}" + _go_literal(shape.g))


# ------------------------------------------------------------------------------ Go template interpreter
_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def render_go(template: str, data: dict[str, Any]) -> str:
    """Render the Go text/template subset Modelfiles use: fields (.X), range/if/else/end, {{- -}} trimming."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        if tokens and tokens[-1][0] == "trim_next":
            tokens.pop()
            text = text.lstrip(" \t\r\n")
        tokens.append(("text", text))
        tokens.append(("action", m.group(2)))
        if m.group(3):
            tokens.append(("trim_next", ""))
        pos = m.end()
    rest = template[pos:]
    if tokens and tokens[-1][0] == "trim_next":
        tokens.pop()
        rest = rest.lstrip(" \t\r\n")
    tokens.append(("text", rest))
    out, _ = _run(tokens, 0, [data], stop=())
    return out


def _lookup(expr: str, scopes: list[dict]) -> Any:
    expr = expr.strip()
    if expr.startswith("$."):
        scope, path = scopes[0], expr[2:]
    elif expr.startswith("."):
        scope, path = scopes[-1], expr[1:]
    else:
        raise InputError(f"unsupported Go template expression {expr!r}", field="template")
    value: Any = scope
    for part in [p for p in path.split(".") if p]:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _truthy(expr: str, scopes: list[dict]) -> bool:
    m = re.fullmatch(r'eq\s+(\S+)\s+"([^"]*)"', expr.strip())
    if m:
        return str(_lookup(m.group(1), scopes)) == m.group(2)
    return bool(_lookup(expr, scopes))


def _run(tokens: list[tuple[str, str]], i: int, scopes: list[dict], stop: tuple[str, ...]) -> tuple[str, int]:
    out = []
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "text":
            out.append(val)
            i += 1
            continue
        word = val.split(None, 1)[0] if val else ""
        if word in stop:
            return "".join(out), i
        if word == "range":
            items = _lookup(val.split(None, 1)[1], scopes) or []
            body_start = i + 1
            _, end = _run(tokens, body_start, scopes, stop=("end",))  # find the matching end
            for item in items:
                text, _ = _run(tokens, body_start, [*scopes, item], stop=("end",))
                out.append(text)
            i = end + 1
        elif word == "if":
            cond = _truthy(val.split(None, 1)[1], scopes)
            then, j = _run(tokens, i + 1, scopes, stop=("else", "end"))
            other = ""
            if tokens[j][1].split(None, 1)[0] == "else":
                other, j = _run(tokens, j + 1, scopes, stop=("end",))
            out.append(then if cond else other)
            i = j + 1
        elif val.startswith("."):
            value = _lookup(val, scopes)
            out.append("" if value is None else str(value))
            i += 1
        else:
            raise InputError(f"unsupported Go template action {{{{ {val} }}}}", field="template")
    return "".join(out), i


# ------------------------------------------------------------------------------------------ Modelfile
SAMPLE_CONVERSATIONS = [
    [{"role": "user", "content": "Hello"}],
    [{"role": "system", "content": "You answer in one word."}, {"role": "user", "content": "Status?"}],
    [{"role": "user", "content": "Two lines:\nfirst\nsecond"}, {"role": "assistant", "content": "Noted.\n"},
     {"role": "user", "content": "Unicode é ✓ 😀 and braces {{ .Role }} stay text"}],
    [{"role": "system", "content": ""}, {"role": "user", "content": "  spaces  "}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
     {"role": "assistant", "content": "d"}, {"role": "user", "content": "e"}],
]


def ollama_messages(messages: list[dict], system: str | None) -> list[dict]:
    """What Ollama hands the template: SYSTEM first when the conversation brings no system message."""
    msgs = [{"Role": m["role"], "Content": m["content"]} for m in messages]
    if system is not None and (not msgs or msgs[0]["Role"] != "system"):
        msgs.insert(0, {"Role": "system", "Content": system})
    return msgs


def verify_template(tokenizer, template: str, system: str | None) -> dict[str, Any]:
    """Render both templates for the sample conversations; every prompt string must be identical."""
    results = []
    for conv in SAMPLE_CONVERSATIONS:
        expected = _render(tokenizer, conv)
        got = render_go(template, {"Messages": ollama_messages(conv, system), "System": system or ""})
        results.append(expected == got)
        if expected != got:
            at = next((i for i, (x, y) in enumerate(zip(expected, got, strict=False)) if x != y),
                      min(len(expected), len(got)))
            raise InputError(f"the Ollama template renders a different prompt than the chat template (first "
                             f"difference at character {at}: {expected[at:at + 30]!r} vs {got[at:at + 30]!r})",
                             field="chat_template")
    return {"conversations": len(results), "identical": sum(results)}


def _quote(text: str) -> str:
    if '"""' in text:
        raise InputError('text for the Modelfile contains """, which a Modelfile cannot quote', field="template")
    return f'"""{text}"""'


def stop_strings(tokenizer, shape: ChatShape) -> list[str]:
    """End-of-turn markers: the template's message end (stripped) and the eos token."""
    stops = []
    for s in (shape.e.strip(), getattr(tokenizer, "eos_token", None), shape.a.strip()):
        if s and s not in stops:
            stops.append(s)
    return stops


def modelfile(gguf_name: str, template: str, system: str | None, stops: list[str], params: dict[str, Any],
              header: str) -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"FROM ./{gguf_name}", "", f"TEMPLATE {_quote(template)}"]
    if system is not None:
        lines.append(f"SYSTEM {_quote(system)}")
    lines.append("")
    for s in stops:
        lines.append(f"PARAMETER stop {_json_str(s)}")
    for k, v in params.items():
        lines.append(f"PARAMETER {k} {v}")
    return "\n".join(lines) + "\n"


def _json_str(s: str) -> str:
    import json

    return json.dumps(s, ensure_ascii=False)


def sampling_parameters(model_dir, context_length: int) -> dict[str, Any]:
    """num_ctx from the model; temperature/top_p/top_k/repeat_penalty only when generation_config sets them."""
    import json
    from pathlib import Path

    params: dict[str, Any] = {"num_ctx": min(int(context_length), 8192)}
    gen = Path(model_dir) / "generation_config.json"
    if gen.is_file():
        cfg = json.loads(gen.read_text())
        if cfg.get("do_sample"):
            for src, dst in (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"),
                             ("repetition_penalty", "repeat_penalty")):
                if cfg.get(src) is not None:
                    params[dst] = cfg[src]
    return params
