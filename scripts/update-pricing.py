#!/usr/bin/env python3
"""Regenerates src/pricing/catalog.json, Antix's built-in price catalog.

Source: `model_prices_and_context_window_backup.json` as shipped inside the MIT-licensed
`litellm` wheel on PyPI. The wheel is downloaded with `pip download --no-deps` and the JSON is
read straight out of the zip: none of litellm's code is installed or run.

    scripts/update-pricing.py                 # the version pinned below
    scripts/update-pricing.py 1.111.0         # another version

Prices become integers in pico-USD (1e-12 USD) per unit (token, image, second of audio,
character), converted through Decimal so no binary float rounding creeps in. OpenAI, Anthropic
and Gemini (AI Studio) models are kept: chat, completion, responses, embedding, image generation,
transcription and speech. Per entry:

  input, output, cache_read, cache_write_5m, cache_write_1h, reasoning   per token
  batch_input, batch_output                                              per token, Batch APIs
  image_input, image_output                                              per image token
  per_image                                                              per image (any size)
  images: {"<quality>/<W>x<H>": price}                                   per image, by size
  per_second, per_character                                              audio in, speech in
  output_per_second                                                      generated audio
  reasoning_model, max_output                                            for cost estimates
"""
import datetime
import decimal
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

LITELLM_VERSION = sys.argv[1] if len(sys.argv) > 1 else "1.110.2"
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "pricing" / "catalog.json"
MEMBER = "litellm/model_prices_and_context_window_backup.json"
PROVIDERS = {"openai": "openai", "text-completion-openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}
MODES = {"chat", "responses", "completion", "embedding", "image_generation",
         "audio_transcription", "audio_speech"}
PICO = decimal.Decimal(10) ** 12


def pico(value):
    if value is None:
        return None
    return int((decimal.Decimal(str(value)) * PICO).to_integral_value(decimal.ROUND_HALF_UP))


def prices(entry, suffix=""):
    p = {
        "input": pico(entry.get("input_cost_per_token" + suffix)),
        "output": pico(entry.get("output_cost_per_token" + suffix)),
        "cache_read": pico(entry.get("cache_read_input_token_cost" + suffix)),
        "cache_write_5m": pico(entry.get("cache_creation_input_token_cost" + suffix)),
        "cache_write_1h": pico(entry.get("cache_creation_input_token_cost_above_1hr" + suffix)),
        "reasoning": pico(entry.get("output_cost_per_reasoning_token" + suffix)),
    }
    return {k: v for k, v in p.items() if v is not None}


def unit_prices(entry):
    """Prices of the units that are not plain tokens, and facts for estimates."""
    p = {
        "batch_input": pico(entry.get("input_cost_per_token_batches")),
        "batch_output": pico(entry.get("output_cost_per_token_batches")),
        "image_input": pico(entry.get("input_cost_per_image_token")),
        "image_output": pico(entry.get("output_cost_per_image_token")),
        "per_image": pico(entry.get("output_cost_per_image")),
        "per_second": pico(entry.get("input_cost_per_second")),
        "per_character": pico(entry.get("input_cost_per_character")),
        "output_per_second": pico(entry.get("output_cost_per_second")),
        "max_output": entry.get("max_output_tokens") if isinstance(entry.get("max_output_tokens"), int) else None,
    }
    p = {k: v for k, v in p.items() if v is not None}
    if entry.get("supports_reasoning"):
        p["reasoning_model"] = True
    return p


def sized_image(key):
    """`high/1024-x-1536/gpt-image-1` -> ("gpt-image-1", "high/1024x1536"); `1024-x-1024/m` -> ("m", "auto/1024x1024")."""
    parts = key.split("/")
    if len(parts) == 3 and "-x-" in parts[1]:
        return parts[2], f"{parts[0]}/{parts[1].replace('-x-', 'x')}"
    if len(parts) == 2 and "-x-" in parts[0]:
        return parts[1], f"auto/{parts[0].replace('-x-', 'x')}"
    return None


def main():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "-d", tmp, f"litellm=={LITELLM_VERSION}"],
            check=True,
        )
        wheel = next(pathlib.Path(tmp).glob("litellm-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            data = json.loads(z.read(MEMBER))
    models = {}
    sized = {}
    for key, entry in sorted(data.items()):
        if not isinstance(entry, dict):
            continue
        provider = PROVIDERS.get(entry.get("litellm_provider"))
        if provider is None or entry.get("mode") not in MODES:
            continue
        name = key.split("/", 1)[1] if key.startswith("gemini/") else key
        image = sized_image(name)
        if image is not None:
            if entry.get("input_cost_per_image") is not None:
                sized.setdefault(image[0], {})[image[1]] = pico(entry["input_cost_per_image"])
            continue
        base = prices(entry)
        units = unit_prices(entry)
        if "/" in name or not (base or any(k in units for k in ("per_image", "per_second", "per_character"))):
            continue
        model = {"provider": provider, "input": base.pop("input", 0), **base, **units}
        tier = prices(entry, "_above_200k_tokens")
        if tier:
            model["tiers"] = [{"above_input_tokens": 200000, **tier}]
        # AI Studio keys ("gemini/...") win over Vertex duplicates of the same name.
        if name not in models or key.startswith("gemini/"):
            models[name] = model
    for name, by_size in sized.items():
        if name in models:
            models[name]["images"] = dict(sorted(by_size.items()))
    catalog = {
        "source": "litellm model_prices_and_context_window_backup.json (MIT), read from the PyPI wheel",
        "source_version": f"litellm {LITELLM_VERSION}",
        "generated": datetime.date.today().isoformat(),
        "version": f"{datetime.date.today().isoformat()}+litellm-{LITELLM_VERSION}",
        "unit": "pico-USD per token (or per image, second, character where the key says so)",
        "models": models,
    }
    OUT.write_text(json.dumps(catalog, indent=1, sort_keys=False) + "\n")
    counts = {}
    for m in models.values():
        counts[m["provider"]] = counts.get(m["provider"], 0) + 1
    print(f"wrote {OUT.relative_to(ROOT)}: {len(models)} models {counts}")


if __name__ == "__main__":
    main()
