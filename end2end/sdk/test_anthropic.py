"""The official `anthropic` SDK pointed at an endpoint's `…/anthropic` base URL, including the
way Claude Code talks to it (OAuth bearer, beta query, session header, system reminders)."""

import anthropic
import pytest

from conftest import OAUTH_TOKEN, ORG_SECRET, assert_no_secrets


def client(gw, **kw):
    kw.setdefault("api_key", gw.vk)
    return anthropic.Anthropic(base_url=gw.urls["anthropic"], max_retries=0, **kw)


def test_messages_with_cache_usage(gw, watch):
    with watch() as w:
        m = client(gw, default_headers={"x-mock": "cache_read=3000;cache_write=500"}).messages.create(
            model="claude-sonnet-4-6", max_tokens=200,
            messages=[{"role": "user", "content": "Summarize the design doc"}])
    assert m.content[0].text.startswith("Mock answer")
    t = w.trace
    assert t["auth_mode"] == "virtual_key"
    assert t["cache_read_tokens"] == m.usage.cache_read_input_tokens == 3000
    assert t["cache_write_tokens"] == m.usage.cache_creation_input_tokens == 500
    # Normalized input = Anthropic's (exclusive) input + cache reads + cache writes.
    assert t["input_tokens"] == m.usage.input_tokens + 3500
    assert t["output_tokens"] == m.usage.output_tokens
    assert t["cost_nanos"] > 0 and t["cost_estimated"] is False
    assert_no_secrets(t, gw.vk, ORG_SECRET)


def test_streaming_helper(gw, watch):
    with watch() as w:
        with client(gw).messages.stream(model="claude-haiku-4-5", max_tokens=100,
                                        messages=[{"role": "user", "content": "Stream please"}]) as s:
            text = "".join(s.text_stream)
            final = s.get_final_message()
    assert text == final.content[0].text
    t = w.trace
    assert t["is_stream"] and t["usage_source"] == "provider"
    assert t["output_tokens"] == final.usage.output_tokens
    assert t["ttft_us"] > 0


def test_count_tokens_is_free(gw, watch):
    with watch() as w:
        n = client(gw).messages.count_tokens(model="claude-sonnet-4-6",
                                             messages=[{"role": "user", "content": "count me"}])
    assert n.input_tokens > 0
    assert w.trace["cost_nanos"] == 0 and w.trace["usage_source"] == "not_applicable"


def claude_code_call(gw, first_prompt, turns, session="6c4b6a0e-2f3c-4d9b-9a51-0b7e7d2a1c10", agent=None):
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-28.\n</system-reminder>"},
        {"type": "text", "text": first_prompt}]}]
    for i in range(turns):
        messages += [{"role": "assistant", "content": f"step {i}"}, {"role": "user", "content": f"continue {i}"}]
    headers = {"anthropic-beta": "claude-code-20250219,oauth-2025-04-20", "x-claude-code-session-id": session}
    if agent:
        headers["x-claude-code-agent-id"] = agent
    c = anthropic.Anthropic(base_url=gw.urls["anthropic"], auth_token=OAUTH_TOKEN, api_key=None, max_retries=0,
                            default_headers=headers)
    return c.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=messages,
                             extra_query={"beta": "true"},
                             metadata={"user_id": f"user_abc_account_def_session_{session}"})


def test_claude_code_oauth_and_sessions(gw, watch):
    keys = []
    for turns in range(3):
        with watch() as w:
            claude_code_call(gw, "Fix the flaky login test", turns)
        assert w.trace["auth_mode"] == "oauth"
        assert w.trace["path"].endswith("?beta=true")
        assert_no_secrets(w.trace, OAUTH_TOKEN)
        keys.append(w.trace["session_key"])
    assert len(set(keys)) == 1
    # A sub-agent (same Claude Code session, its own agent id): its own session, same parent.
    with watch() as w:
        claude_code_call(gw, "Search the codebase for login handlers", 0, agent="a0a04a80b527861ec")
    assert w.trace["session_key"] == "cc:6c4b6a0e-2f3c-4d9b-9a51-0b7e7d2a1c10:agent:a0a04a80b527861ec"
    assert w.trace["session_parent"] == "cc:6c4b6a0e-2f3c-4d9b-9a51-0b7e7d2a1c10"
    # After /compact the first message is a summary: still the same session.
    with watch() as w:
        claude_code_call(gw, "This session is being continued from a previous conversation that ran out of context.", 1)
    assert w.trace["session_key"] == keys[0]


def test_errors(gw, watch):
    with pytest.raises(anthropic.AuthenticationError) as e:
        client(gw, api_key="sk-vk-nope").messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "Invalid virtual key" in str(e.value)
    with pytest.raises(anthropic.InternalServerError):
        client(gw, default_headers={"x-mock": "html=502"}).messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with watch() as w:
        with pytest.raises(anthropic.APIError):
            with client(gw, default_headers={"x-mock": "cut_after=1"}).messages.stream(
                    model="claude-sonnet-4-6", max_tokens=50, messages=[{"role": "user", "content": "x"}]) as s:
                for _ in s.text_stream:
                    pass
    assert w.trace["outcome"] == "upstream_cut" and w.trace["usage_source"] == "estimated"
