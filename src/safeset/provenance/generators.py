"""Generator metadata as the tools write it, and the marks hosted generators leave.

Read from the container only (see ``metadata``), in this order:

* AUTOMATIC1111 (and its forks Forge, SD.Next, which write the same text): a ``parameters``
  PNG text chunk, or in JPEG/WebP the EXIF UserComment (``piexif``'s UNICODE encoding), holding
  ``PROMPT\\nNegative prompt: ...\\nSteps: 20, Sampler: ..., Model: ..., Version: ...``.
* ComfyUI: ``prompt`` (the API graph: node id -> ``{class_type, inputs}``) and ``workflow``
  (the editor graph) JSON text chunks.
* InvokeAI: ``invokeai_metadata`` (JSON), older ``sd-metadata`` (JSON) and ``Dream`` (text).
* NovelAI: ``Software: NovelAI`` with a JSON ``Comment`` (``prompt``, ``uc``...).
* Fooocus: ``parameters`` as JSON with ``fooocus_scheme``, or A1111 text whose ``Version`` is
  ``Fooocus ...``.
* Midjourney: a ``Description`` text with ``Job ID: <uuid>``.
* Hosted generators and editors that name themselves in EXIF ``Software``/``Artist``, XMP
  ``CreatorTool``/``Credit`` or ``Iptc4xmpExt:AISystemUsed`` ("Made with Google AI", Adobe
  Firefly, DALL-E...). C2PA claims (OpenAI, Microsoft, Adobe...) are read by ``c2pa``.

The prompt is returned so that the caption-term screening can see it: a generator's own prompt
says what was asked for, which is stronger evidence than a scraped caption.
"""

from __future__ import annotations

import json
import re
from typing import Any

from safeset.provenance.metadata import Metadata
from safeset.provenance.xmp import XmpFacts

# Prompts longer than this are cut in results (they are evidence, not content to keep).
MAX_PROMPT_CHARS = 4000

# (pattern, generator) matched against tool and credit fields; first match wins.
HOSTED_MARKS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), name)
    for p, name in (
        (r"\bmade with google ai\b|\bgoogle (imagen|gemini)\b|\bsynthid\b", "Google AI"),
        (r"\badobe firefly\b", "Adobe Firefly"),
        (r"\bdall[\s\-·.]*e\b|\bopenai\b|\bchatgpt\b", "OpenAI DALL-E"),
        (r"\bmidjourney\b", "Midjourney"),
        (r"\bbing image creator\b|\bmicrosoft designer\b|\bimage creator\b", "Microsoft"),
        (r"\bimagined with ai\b|\bmeta ai\b", "Meta AI"),
        (r"\bnovelai\b", "NovelAI"),
        (r"\bstable diffusion\b|\bstability\.?ai\b|\bdreamstudio\b", "Stable Diffusion"),
        (r"\bleonardo\.?ai\b", "Leonardo.Ai"),
        (r"\bideogram\b", "Ideogram"),
        (r"\bflux(\.1)?\b", "FLUX"),
        (r"\bcomfyui\b", "ComfyUI"),
        (r"\binvokeai\b", "InvokeAI"),
        (r"\bfooocus\b", "Fooocus"),
    )
)
_JOB_ID = re.compile(r"Job ID:\s*[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)
_A1111_SETTINGS = re.compile(r"^Steps: \d+", re.MULTILINE)
_SETTING = re.compile(r'\s*([\w \-/]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def detect_generator(meta: Metadata, xmp: XmpFacts) -> dict[str, Any] | None:
    """``{name, evidence, prompt?, negative_prompt?, model?, version?}`` or None."""
    text = meta.text
    found = (
        _fooocus(text)
        or _a1111(text.get("parameters"), "png:parameters")
        or _a1111(meta.exif.get("UserComment"), "exif:UserComment")
        or _comfyui(text)
        or _invokeai(text)
        or _novelai(text)
        or _midjourney(text.get("Description"))
        or _hosted(meta, xmp)
    )
    if found and found.get("prompt"):
        found["prompt"] = found["prompt"][:MAX_PROMPT_CHARS]
    return found


def parse_a1111(parameters: str) -> dict[str, Any]:
    """Split A1111's infotext into prompt, negative prompt and the settings line."""
    lines = parameters.strip().split("\n")
    settings: dict[str, str] = {}
    if lines and _A1111_SETTINGS.match(lines[-1]):
        settings = {k.strip(): v.strip().strip('"') for k, v in _SETTING.findall(lines.pop())}
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    return {
        "prompt": "\n".join(prompt).strip(),
        "negative_prompt": "\n".join(negative).strip() or None,
        "settings": settings,
    }


def _a1111(parameters: str | None, evidence: str) -> dict[str, Any] | None:
    if not parameters or not _A1111_SETTINGS.search(parameters):
        return None
    parsed = parse_a1111(parameters)
    settings = parsed.pop("settings")
    version = settings.get("Version")
    name = "Fooocus" if version and version.lower().startswith("fooocus") else "AUTOMATIC1111"
    return {
        "name": name,
        "evidence": evidence,
        **parsed,
        "model": settings.get("Model") or settings.get("Model hash"),
        "version": version,
    }


def _fooocus(text: dict[str, str]) -> dict[str, Any] | None:
    if "fooocus_scheme" not in text:
        return None
    data = _json(text.get("parameters"))
    if not isinstance(data, dict):
        return _a1111(text.get("parameters"), "png:parameters+fooocus_scheme")
    return {
        "name": "Fooocus",
        "evidence": "png:parameters+fooocus_scheme",
        "prompt": _str(data.get("prompt") or data.get("Prompt")),
        "negative_prompt": _str(data.get("negative_prompt") or data.get("Negative Prompt")),
        "model": _str(data.get("base_model") or data.get("Base Model")),
        "version": _str(data.get("version") or data.get("Version")),
    }


def _comfyui(text: dict[str, str]) -> dict[str, Any] | None:
    graph = _json(text.get("prompt"))
    workflow = _json(text.get("workflow"))
    nodes = graph if isinstance(graph, dict) else {}
    if not (_is_api_graph(nodes) or (isinstance(workflow, dict) and "nodes" in workflow)):
        return None
    texts: dict[str, str] = {}
    linked: dict[str, list[str]] = {"positive": [], "negative": []}
    models = []
    for node_id, node in nodes.items():
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        for key in ("text", "text_g", "text_l", "prompt"):
            if isinstance(inputs.get(key), str):
                texts.setdefault(str(node_id), inputs[key])
        for key in ("ckpt_name", "unet_name", "model_name"):
            if isinstance(inputs.get(key), str):
                models.append(inputs[key])
        for side, ids in linked.items():
            link = inputs.get(side)
            if isinstance(link, list) and link:
                ids.append(str(link[0]))
    # A sampler's positive/negative inputs say which text is which; else all texts count.
    positive = [texts[i] for i in linked["positive"] if i in texts] or list(texts.values())
    negative = [texts[i] for i in linked["negative"] if i in texts]
    evidence = "png:prompt+workflow" if workflow else "png:prompt"
    return {
        "name": "ComfyUI",
        "evidence": evidence if nodes else "png:workflow",
        "prompt": "\n".join(dict.fromkeys(positive)) or None,
        "negative_prompt": "\n".join(dict.fromkeys(negative)) or None,
        "model": models[0] if models else None,
    }


def _is_api_graph(nodes: dict[str, Any]) -> bool:
    return bool(nodes) and all(isinstance(n, dict) and "class_type" in n for n in nodes.values())


def _invokeai(text: dict[str, str]) -> dict[str, Any] | None:
    data = _json(text.get("invokeai_metadata"))
    if isinstance(data, dict):
        model = data.get("model")
        return {
            "name": "InvokeAI",
            "evidence": "png:invokeai_metadata",
            "prompt": _str(data.get("positive_prompt")),
            "negative_prompt": _str(data.get("negative_prompt")),
            "model": _str(model.get("name") if isinstance(model, dict) else model),
            "version": _str(data.get("app_version")),
        }
    legacy = _json(text.get("sd-metadata"))
    if isinstance(legacy, dict):
        image = legacy.get("image") if isinstance(legacy.get("image"), dict) else {}
        prompt = image.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(str(p.get("prompt", "")) for p in prompt if isinstance(p, dict))
        return {
            "name": "InvokeAI",
            "evidence": "png:sd-metadata",
            "prompt": _str(prompt),
            "model": _str(legacy.get("model_weights")),
            "version": _str(legacy.get("app_version")),
        }
    dream = text.get("Dream")
    if dream:
        match = re.match(r'\s*"((?:\\.|[^"])*)"', dream)
        return {
            "name": "InvokeAI",
            "evidence": "png:Dream",
            "prompt": match.group(1) if match else dream,
        }
    return None


def _novelai(text: dict[str, str]) -> dict[str, Any] | None:
    if text.get("Software", "").strip().lower() != "novelai":
        return None
    comment = _json(text.get("Comment"))
    comment = comment if isinstance(comment, dict) else {}
    return {
        "name": "NovelAI",
        "evidence": "png:Software",
        "prompt": _str(comment.get("prompt")) or _str(text.get("Description")),
        "negative_prompt": _str(comment.get("uc")),
        "model": _str(text.get("Source")),
    }


def _midjourney(description: str | None) -> dict[str, Any] | None:
    if not description or not _JOB_ID.search(description):
        return None
    prompt = _JOB_ID.split(description, maxsplit=1)[0].strip()
    return {"name": "Midjourney", "evidence": "png:Description (Job ID)", "prompt": prompt}


def _hosted(meta: Metadata, xmp: XmpFacts) -> dict[str, Any] | None:
    fields = [
        ("exif:Software", meta.exif.get("Software")),
        ("exif:Artist", meta.exif.get("Artist")),
        ("exif:Make", meta.exif.get("Make")),
        ("png:Software", meta.text.get("Software")),
        ("xmp:AISystemUsed", xmp.get("ai_system_used")),
        ("xmp:CreatorTool", xmp.get("creator_tool")),
        ("xmp:Credit", xmp.get("credit")),
    ]
    for evidence, value in fields:
        if not value:
            continue
        for pattern, name in HOSTED_MARKS:
            if pattern.search(value):
                prompt = xmp.get("ai_prompt") if evidence.startswith("xmp") else None
                return {"name": name, "evidence": f"{evidence}={value[:80]}", "prompt": prompt}
    return None


def from_c2pa(c2pa_facts: dict[str, Any] | None) -> dict[str, Any] | None:
    """A hosted generator named by a C2PA claim generator or an action's software agent."""
    facts = c2pa_facts or {}
    agents = [("c2pa:claim_generator", facts.get("claim_generator"))]
    agents += [("c2pa:softwareAgent", a.get("softwareAgent")) for a in facts.get("actions") or []]
    for evidence, value in agents:
        for pattern, name in HOSTED_MARKS:
            if value and pattern.search(value):
                return {"name": name, "evidence": f"{evidence}={value[:80]}"}
    return None


def _json(text: str | None) -> Any:
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text.strip() or None
