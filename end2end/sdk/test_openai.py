"""The official `openai` SDK pointed at an endpoint's `…/openai` base URL."""

import base64
import json

import openai
import pytest

from conftest import BYOK_OPENAI, ORG_SECRET, assert_no_secrets


def client(gw, key=None, **kw):
    return openai.OpenAI(base_url=gw.urls["openai"], api_key=key or gw.vk, max_retries=0, **kw)


MSG = [{"role": "user", "content": "Explain gateways in one line"}]


def test_chat_with_a_virtual_key(gw, watch):
    with watch() as w:
        raw = client(gw).chat.completions.with_raw_response.create(model="gpt-4o", messages=MSG)
    resp = raw.parse()
    assert resp.choices[0].message.content.startswith("Mock answer")
    t = w.trace
    assert raw.headers["x-antix-trace-id"] == t["id"]
    assert t["auth_mode"] == "virtual_key" and t["virtual_key_id"]
    assert (t["input_tokens"], t["output_tokens"]) == (resp.usage.prompt_tokens, resp.usage.completion_tokens)
    assert t["usage_source"] == "provider"
    assert t["cost_nanos"] == resp.usage.prompt_tokens * 2500 + resp.usage.completion_tokens * 10000
    assert t["cost_estimated"] is False
    assert t["ttft_us"] > 0 and t["latency_us"] >= t["ttft_us"]
    assert t["request_headers"]["authorization"] == "<redacted>"
    assert_no_secrets(t, gw.vk, ORG_SECRET)


def test_stream_without_usage_requested_still_records_usage(gw, watch):
    with watch() as w:
        chunks = list(client(gw).chat.completions.create(model="gpt-4o", messages=MSG, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Mock answer")
    assert all(c.usage is None for c in chunks), "the client saw usage it did not ask for"
    assert all(c.choices for c in chunks), "the client saw the hidden usage-only chunk"
    t = w.trace
    assert t["is_stream"] and t["usage_source"] == "provider"
    assert t["output_tokens"] > 0
    assert json.loads(t["response_assembled"])["choices"][0]["message"]["content"] == text


def test_stream_with_usage_requested(gw, watch):
    with watch() as w:
        chunks = list(client(gw).chat.completions.create(
            model="gpt-4o-mini", messages=MSG, stream=True, stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert w.trace["input_tokens"] == usage.prompt_tokens
    assert w.trace["output_tokens"] == usage.completion_tokens


def test_byok_is_passed_through_and_estimated(gw, watch):
    with watch() as w:
        resp = client(gw, key=BYOK_OPENAI).chat.completions.create(model="gpt-4.1", messages=MSG)
    assert resp.choices
    t = w.trace
    assert t["auth_mode"] == "byok" and t["virtual_key_id"] is None
    assert t["cost_estimated"] is True and t["cost_nanos"] > 0
    assert_no_secrets(t, BYOK_OPENAI)


def test_responses_api_chains_into_one_session(gw, watch):
    c = client(gw)
    with watch() as w1:
        first = c.responses.create(model="gpt-4.1", input="Plan a three-day trip to Lisbon")
    with watch() as w2:
        second = c.responses.create(model="gpt-4.1", input="Now add restaurants", previous_response_id=first.id)
    with watch() as w3:
        stream = c.responses.create(model="gpt-4.1", input="And museums", previous_response_id=second.id, stream=True)
        events = [e.type for e in stream]
    assert "response.completed" in events
    keys = {w.trace["session_key"] for w in (w1, w2, w3)}
    assert len(keys) == 1 and None not in keys
    assert w1.trace["response_id"] == first.id
    assert w3.trace["usage_source"] == "provider"


def test_embeddings_and_models(gw, watch):
    with watch() as w:
        e = client(gw).embeddings.create(model="text-embedding-3-small", input=["a", "bb"])
    assert len(e.data) == 2 and len(e.data[0].embedding) == 8
    assert w.trace["input_tokens"] == e.usage.prompt_tokens
    assert w.trace["cost_nanos"] == e.usage.prompt_tokens * 20
    ids = [m.id for m in client(gw).models.list()]
    assert "gpt-4o" in ids


def test_errors_raise_the_usual_exceptions(gw, watch):
    with pytest.raises(openai.AuthenticationError) as e:
        client(gw, key="sk-vk-" + "A" * 49).chat.completions.create(model="gpt-4o", messages=MSG)
    assert "Invalid virtual key" in str(e.value)
    with pytest.raises(openai.RateLimitError) as e:
        client(gw, default_headers={"x-mock": "fail=429;retry_after=3"}).chat.completions.create(
            model="gpt-4o", messages=MSG)
    assert e.value.response.headers["retry-after"] == "3"
    with watch() as w:
        with pytest.raises(openai.APIError):
            list(client(gw, default_headers={"x-mock": "cut_after=2"}).chat.completions.create(
                model="gpt-4o", messages=MSG, stream=True))
    assert w.trace["outcome"] == "upstream_cut"


def test_archived_endpoint_is_gone(gw):
    ep = gw.new_endpoint("to-archive")
    c = openai.OpenAI(base_url=ep["urls"]["openai"], api_key=gw.vk, max_retries=0)
    assert c.chat.completions.create(model="gpt-4o", messages=MSG).choices
    gw.cli("endpoint", "archive", "--as", "ada@example.com", "--id", ep["id"])
    # The gateway trusts its endpoint cache for a few seconds: archival shows within that.
    deadline = __import__("time").time() + 10
    while True:
        try:
            c.chat.completions.create(model="gpt-4o", messages=MSG)
        except openai.APIStatusError as e:
            assert e.status_code == 410
            assert "archived" in str(e)
            break
        assert __import__("time").time() < deadline, "archival never took effect"
        __import__("time").sleep(0.2)


def test_embedding_base64_is_decodable(gw):
    raw = client(gw).embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="x", encoding_format="base64")
    data = raw.http_response.json()["data"][0]["embedding"]
    assert len(base64.b64decode(data)) == 32
