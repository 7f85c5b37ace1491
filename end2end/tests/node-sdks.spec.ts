// Drop-in compatibility with the official Node SDKs (openai, @anthropic-ai/sdk, @google/genai):
// chat, Responses (chained and streamed), embeddings, Messages (streamed), Gemini (streamed)
// through one endpoint with a virtual key; every call traced with usage and cost; errors in
// each SDK's own types.
import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { cliEndpoint, cliTraces } from "./helpers";

test("the Node SDKs work unmodified through an endpoint", async () => {
  const ep = cliEndpoint("Node SDKs");
  const raw = execFileSync(
    "node",
    [resolve(__dirname, "../node/sdks.mjs"), ep.urls.openai, ep.urls.anthropic, ep.urls.gemini, ep.key],
    { encoding: "utf8", cwd: resolve(__dirname, "..") },
  );
  const out = JSON.parse(raw.trim().split("\n").pop()!);
  for (const k of ["chat", "chatStream", "messages", "messagesStream", "gemini", "geminiStream"]) {
    expect(out[k], k).toBeTruthy();
  }
  expect(out.leakedUsage).toBeUndefined();
  expect(out.responsesStream).toBe(true);
  expect(out.embedding).toBe(8);
  expect(out.openaiError).toMatchObject({ status: 401, isApiError: true });
  expect(out.openaiError.message).toContain("Invalid virtual key");
  expect(out.anthropicError).toMatchObject({ status: 429, isApiError: true });

  // Every call is a trace (the refused key's attempt too), billed to the organization.
  await expect(async () => expect(cliTraces(ep.id).length).toBe(11)).toPass({ timeout: 15_000 });
  const traces = cliTraces(ep.id);
  const ok = traces.filter((t) => t.outcome === "ok" && t.status_code === 200);
  expect(ok.length).toBe(9);
  for (const t of ok) {
    expect(t.auth_mode).toBe("virtual_key");
    expect(t.usage_source === "provider" || t.usage_source === "not_applicable").toBe(true);
    expect(t.cost_nanos).toBeGreaterThan(0);
  }
  // The chained Responses calls are one session.
  const responses = ok.filter((t) => t.wire === "openai.responses");
  expect(responses.length).toBe(2);
  expect(new Set(responses.map((t) => t.session_key)).size).toBe(1);
});
