"""The official SDKs through an endpoint's universal `…/multi` base URL, each calling another
provider's model: the gateway translates the request into that provider's API and the answer
back into the SDK's own shape."""

import json

import anthropic
import openai
from google import genai
from google.genai import types

from conftest import ORG_SECRET, assert_no_secrets

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def openai_client(gw):
    # `tool_call`: the mock provider calls the first tool it is given.
    return openai.OpenAI(base_url=gw.urls["multi"], api_key=gw.vk, max_retries=0,
                         default_headers={"x-mock": "tool_call"})


def stream_tool_call(gw, watch, model):
    with watch() as w:
        stream = openai_client(gw).chat.completions.create(
            model=model, messages=ASK, tools=TOOLS, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
    calls = {}
    finish = None
    for c in chunks:
        for choice in c.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"name": "", "args": ""})
                if tc.function.name:
                    entry["name"] = tc.function.name
                entry["args"] += tc.function.arguments or ""
    assert finish == "tool_calls"
    assert [c["name"] for c in calls.values()] == ["get_weather"]
    assert json.loads(calls[0]["args"]) == {"city": "Paris"}
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    return w.trace, usage


def test_openai_sdk_streams_tool_calls_from_claude(gw, watch):
    t, usage = stream_tool_call(gw, watch, "claude-sonnet-4-5")
    assert t["provider"] == "anthropic" and t["wire"] == "anthropic.messages"
    assert t["input_tokens"] == usage.prompt_tokens and t["output_tokens"] == usage.completion_tokens
    assert t["cost_nanos"] > 0 and not t["cost_estimated"]
    assert_no_secrets(t, gw.vk, ORG_SECRET)


def test_openai_sdk_streams_tool_calls_from_gemini(gw, watch):
    t, usage = stream_tool_call(gw, watch, "gemini-2.5-flash")
    assert t["provider"] == "gemini" and t["wire"] == "gemini.generate"
    assert t["output_tokens"] == usage.completion_tokens


def test_anthropic_sdk_reaches_an_openai_model(gw, watch):
    c = anthropic.Anthropic(base_url=gw.urls["multi"], api_key=gw.vk, max_retries=0)
    with watch() as w:
        m = c.messages.create(model="gpt-4o", max_tokens=64, system="Be brief.",
                              messages=[{"role": "user", "content": "Say hello"}])
    assert m.type == "message" and m.content[0].text.startswith("Mock answer")
    assert m.stop_reason == "end_turn"
    t = w.trace
    assert t["provider"] == "openai" and t["wire"] == "openai.chat"
    assert (t["input_tokens"], t["output_tokens"]) == (m.usage.input_tokens, m.usage.output_tokens)
    # The same error classes as against Anthropic itself.
    try:
        anthropic.Anthropic(base_url=gw.urls["multi"], api_key=gw.vk, max_retries=0,
                            default_headers={"x-mock": "fail=429"}).messages.create(
            model="gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("no error")
    except anthropic.RateLimitError as e:
        assert "mock failure" in str(e)


def test_genai_sdk_reaches_claude(gw, watch):
    c = genai.Client(api_key=gw.vk, http_options=types.HttpOptions(base_url=gw.urls["multi"]))
    with watch() as w:
        r = c.models.generate_content(model="claude-haiku-4-5", contents="Why is the sky blue?")
    assert r.text.startswith("Mock answer")
    t = w.trace
    assert t["provider"] == "anthropic" and t["model"] == "claude-haiku-4-5"
    assert t["input_tokens"] == r.usage_metadata.prompt_token_count
    with watch() as w:
        text = "".join(ch.text or "" for ch in c.models.generate_content_stream(
            model="claude-haiku-4-5", contents="Stream a poem"))
    assert text.startswith("Mock answer")
    assert w.trace["is_stream"] and w.trace["output_tokens"] > 0
