"""The official `google-genai` SDK with `http_options.base_url` set to an endpoint's
`…/gemini` base URL."""

import json

import pytest
from google import genai
from google.genai import errors, types

from conftest import BYOK_GEMINI, ORG_SECRET, assert_no_secrets


def client(gw, key=None, headers=None):
    return genai.Client(api_key=key or gw.vk,
                        http_options=types.HttpOptions(base_url=gw.urls["gemini"], headers=headers or {}))


def test_generate_content(gw, watch):
    with watch() as w:
        c = client(gw, headers={"x-mock": "reasoning=40"})
        r = c.models.generate_content(model="gemini-2.5-flash", contents="Why is the sky blue?")
    assert r.text.startswith("Mock answer")
    t = w.trace
    assert t["auth_mode"] == "virtual_key" and t["model"] == "gemini-2.5-flash"
    assert t["input_tokens"] == r.usage_metadata.prompt_token_count
    # Thoughts are output too.
    assert t["output_tokens"] == r.usage_metadata.candidates_token_count + 40
    assert t["reasoning_tokens"] == 40
    assert t["cost_nanos"] > 0
    assert_no_secrets(t, gw.vk, ORG_SECRET)


def test_stream(gw, watch):
    c = client(gw)
    with watch() as w:
        text = "".join(ch.text or "" for ch in c.models.generate_content_stream(
            model="gemini-2.5-pro", contents="Stream a poem"))
    assert text.startswith("Mock answer")
    t = w.trace
    assert t["is_stream"] and t["usage_source"] == "provider" and t["output_tokens"] > 0
    assembled = json.loads(t["response_assembled"])
    assert assembled["candidates"][0]["content"]["parts"][0]["text"] == text


def test_count_and_embed(gw, watch):
    c = client(gw)
    with watch() as w:
        n = c.models.count_tokens(model="gemini-2.5-flash", contents="count these tokens")
    assert n.total_tokens > 0
    assert w.trace["cost_nanos"] == 0
    e = c.models.embed_content(model="text-embedding-004", contents="embed me")
    assert e.embeddings[0].values


def test_byok(gw, watch):
    c = client(gw, key=BYOK_GEMINI)
    with watch() as w:
        c.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert w.trace["auth_mode"] == "byok" and w.trace["cost_estimated"] is True
    assert_no_secrets(w.trace, BYOK_GEMINI)


def test_bad_key(gw):
    c = client(gw, key="sk-vk-bogus")
    with pytest.raises(errors.ClientError) as e:
        c.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert e.value.code == 401
