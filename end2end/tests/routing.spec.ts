// Several credentials for a provider, as an admin sets them up in the portal: one that the
// provider rate-limits (the mock provider takes its fault from the key itself) and a backup.
// A call through the proxy is retried on the backup, and the drawer lists both attempts; the
// Traces filter finds the call that needed a retry.
import { expect, test } from "@playwright/test";
import { cliEndpoint, login, shot, untilHydrated, watchForErrors } from "./helpers";

test("credentials: add two for a provider, test one; a 429 on the first is served by the second and shown as attempts", async ({ page }, info) => {
  const errors = watchForErrors(page);
  const ep = cliEndpoint("Routing demo");
  await login(page);
  await page.goto("/credentials");
  const openai = page.getByTestId("cred-openai");
  const form = openai.getByTestId("credential-form");
  // Replaces the CLI's `default` with one the provider always rate-limits, heavily weighted so
  // the first call goes to it.
  await form.getByLabel("Name").fill("default");
  await form.getByLabel("API key").fill("sk-flaky-e2e#fail=429;retry_after=30");
  await form.getByLabel("Weight").fill("1000");
  await form.getByRole("button", { name: "Save" }).click();
  await expect(openai.locator('[data-testid="credential-row"][data-name="default"]')).toContainText("weight 1000");
  await form.getByLabel("Name").fill("backup");
  await form.getByLabel("API key").fill("sk-backup-e2e-5678");
  await form.getByLabel("Weight").fill("1");
  await form.getByRole("button", { name: "Save" }).click();
  const backup = openai.locator('[data-testid="credential-row"][data-name="backup"]');
  await expect(backup).toContainText("…5678");
  await expect(openai.getByTestId("credential-row")).toHaveCount(2);
  await untilHydrated(
    page,
    () => backup.getByTestId("test-credential").click(),
    () => expect(backup.getByTestId("test-result")).toContainText("Connected"),
  );
  await shot(page, info, "credentials-two");

  // A call with the virtual key: the first credential answers 429, the backup serves it.
  const res = await fetch(`${ep.urls.openai}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ep.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "retry me" }] }),
  });
  expect(res.status).toBe(200);
  const traceId = res.headers.get("x-antix-trace-id")!;
  // The trace is complete once the answer has been read (as an SDK reads it).
  expect((await res.json()).choices[0].message.content).toContain("Mock answer");

  // The Traces filter for calls that needed another try, then the drawer's attempts. The trace
  // is written a moment after the answer (the recorder batches its writes), and the page does
  // not refresh itself: each look is a fresh load, retried briefly (a page loaded before the
  // write would otherwise be stared at until the whole wait ran out).
  await expect(async () => {
    await page.goto(`/endpoints/${ep.id}/traces?status=retried`);
    await expect(page.getByTestId("trace-row")).toHaveCount(1, { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await page.goto(`/endpoints/${ep.id}/traces?trace=${traceId}`);
  const attempts = page.getByTestId("drawer").getByTestId("attempt");
  await expect(attempts).toHaveCount(2);
  await expect(attempts.nth(0)).toContainText("default");
  await expect(attempts.nth(0)).toContainText("429");
  await expect(attempts.nth(1)).toContainText("backup");
  await expect(attempts.nth(1)).toContainText("200");
  await shot(page, info, "drawer-attempts");
  expect(errors).toEqual([]);
});

test("fallbacks: set in Settings with field errors; a call for a model the provider lacks is served by the fallback", async ({ page }, info) => {
  const errors = watchForErrors(page);
  const ep = cliEndpoint("Fallback demo");
  await login(page);
  await page.goto(`/endpoints/${ep.id}/settings`);
  const form = page.getByTestId("fallbacks-form");
  const box = form.getByTestId("fallbacks");
  // A provider Antix does not know is refused, by field, and nothing is saved.
  await untilHydrated(
    page,
    async () => {
      await box.fill("mistral/large");
      await form.getByTestId("save-fallbacks").click();
    },
    () => expect(page.locator("#fallbacks-error")).toContainText("openai, anthropic or gemini"),
  );
  await box.fill("anthropic/claude-haiku-4-5\ngemini/gemini-2.5-flash");
  await form.getByTestId("save-fallbacks").click();
  await expect(form.getByTestId("fallbacks-saved")).toBeVisible();
  await page.reload();
  await expect(page.getByTestId("fallbacks")).toHaveValue("anthropic/claude-haiku-4-5\ngemini/gemini-2.5-flash");
  await shot(page, info, "settings-fallbacks");

  // The provider has no such model: the first fallback serves the call, in OpenAI's shape.
  const res = await fetch(`${ep.urls.openai}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ep.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-missing", messages: [{ role: "user", content: "fall back" }] }),
  });
  expect(res.status).toBe(200);
  const traceId = res.headers.get("x-antix-trace-id")!;
  expect((await res.json()).choices[0].message.content).toContain("Mock answer");
  await expect(async () => {
    await page.goto(`/endpoints/${ep.id}/traces?trace=${traceId}`);
    await expect(page.getByTestId("drawer").getByTestId("attempt").last()).toContainText("fallback", { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  const attempts = page.getByTestId("drawer").getByTestId("attempt");
  await expect(attempts.first()).toContainText("404");
  await expect(attempts.last()).toContainText("claude-haiku-4-5");
  await expect(attempts.last()).toContainText("openai→anthropic");
  await shot(page, info, "drawer-fallback");
  expect(errors).toEqual([]);
});
