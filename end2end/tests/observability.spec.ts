// The observability screens as their users drive them, on traffic made through the proxy by the
// official SDKs: the Traces tab (every filter, body search, the drawer from a row, deep links,
// the back button), the Activity tab (an Anthropic SDK agent session as one session with a bar
// per call, linked sub-agent, drawer from a bar, zoom), and the Overview's sums. Along the way,
// an XSS payload in a prompt stays text everywhere it shows.
import { expect, Page, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ADMIN, login, shot, untilHydrated, watchForErrors } from "./helpers";

test.describe.configure({ mode: "serial" });

const root = resolve(__dirname, "..", "..");
const python = resolve(__dirname, "..", ".venv", "bin", "python");
const XSS = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;

/** Runs the `antix` CLI against the test server's database. */
function antix(args: string[], input?: string): string {
  const data = process.env.ANTIX_E2E_DATA!;
  return execFileSync(`${root}/target/release/antix`, args, {
    input,
    encoding: "utf8",
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${data}/antix.db`,
      ANTIX_DATA_DIR: data,
      ANTIX_CONFIG: "",
      ANTIX_LOG: "warn",
    },
  });
}

// The traffic: BYOK chat calls (one with an XSS payload and a searchable word, one failing),
// one virtual-key call, and an agent session through the Anthropic SDK: 8 sequential turns
// (half streamed), 4 parallel tool calls, then a sub-agent with its own first prompt.
const TRAFFIC = `
import json, sys, threading, openai, anthropic
oa_url, an_url, vk, xss = sys.argv[1:5]
byok = openai.OpenAI(base_url=oa_url, api_key="sk-test-byok-1234567890abcd", max_retries=0)
byok.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "What is the capital of France?"}])
byok.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Name three prime numbers."}])
byok.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": xss + " marmoset-42"}])
try:
    openai.OpenAI(base_url=oa_url, api_key="sk-test-byok-1234567890abcd", max_retries=0,
                  default_headers={"x-mock": "fail=500"}).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "this one fails"}])
except openai.APIStatusError:
    pass
openai.OpenAI(base_url=oa_url, api_key=vk, max_retries=0).chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": "billed to the organization"}])

an = anthropic.Anthropic(base_url=an_url, api_key="sk-ant-api03-test-byok-123456", max_retries=0,
                         default_headers={"x-claude-code-session-id": "e2e-session-1", "x-mock": "ttft_ms=40;delay_ms=15"})
history = [{"role": "user", "content": "Refactor the billing module"}]
for turn in range(8):
    if turn % 2:
        with an.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=history) as s:
            text = s.get_final_text()
    else:
        text = an.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=history).content[0].text
    history = history + [{"role": "assistant", "content": text}, {"role": "user", "content": f"continue with step {turn}"}]
calls = [threading.Thread(target=lambda: an.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=history)) for _ in range(4)]
[t.start() for t in calls]
[t.join() for t in calls]
# A sub-agent, as Claude Code sends one: the same session id, its own agent id.
sub_an = anthropic.Anthropic(base_url=an_url, api_key="sk-ant-api03-test-byok-123456", max_retries=0,
                             default_headers={"x-claude-code-session-id": "e2e-session-1",
                                              "x-claude-code-agent-id": "a0a04a80b527861ec"})
sub = [{"role": "user", "content": "Sub-agent: find every caller of charge()"}]
for i in range(3):
    sub_an.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=sub)
print(json.dumps({"ok": True}))
`;
const TOTAL = 20;

let endpointId = "";

async function rows(page: Page) {
  return page.getByTestId("trace-row");
}

async function pick(page: Page, testId: string, value: string) {
  await page.getByTestId(testId).selectOption(value);
}

test("traffic through the SDKs shows up in Traces, filterable and searchable", async ({ page, context }, info) => {
  const errors = watchForErrors(page);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await login(page);

  // An org-shared endpoint, an OpenAI credential for the organization and a virtual key.
  await page.goto("/");
  await page.getByLabel("Display Name").fill("Agents");
  await page.getByTestId("scope-org-shared").check();
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByTestId("endpoint-name")).toHaveText("Agents");
  endpointId = page.url().split("/endpoints/")[1];
  const openaiUrl = await page.getByTestId("url-openai").getByTestId("url").innerText();
  const anthropicUrl = await page.getByTestId("url-anthropic").getByTestId("url").innerText();
  antix(["credential", "set", "--as", ADMIN.email, "--provider", "openai"], "sk-org-openai-obs-1234\n");
  const key = JSON.parse(antix(["key", "create", "--as", ADMIN.email, "--name", "obs-key", "--json"]).trim());

  // No traces yet, and no Activity tab.
  await expect(page.getByRole("link", { name: "Activity" })).toHaveCount(0);
  const out = execFileSync(python, ["-c", TRAFFIC, openaiUrl, anthropicUrl, key.key, XSS], { encoding: "utf8" });
  expect(out).toContain('"ok": true');

  // Every call is recorded (the recorder writes in batches: wait for the last one).
  await expect(async () => {
    await page.goto(`/endpoints/${endpointId}/traces`);
    await expect(await rows(page)).toHaveCount(TOTAL, { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByRole("link", { name: "Activity" })).toBeVisible();
  await shot(page, info, "traces");

  // Filters apply at once after hydration and live in the URL.
  await untilHydrated(
    page,
    () => pick(page, "filter-model", "gpt-4o-mini"),
    () => expect(page).toHaveURL(/model=gpt-4o-mini/, { timeout: 1000 }),
  );
  await expect(await rows(page)).toHaveCount(2);
  await expect(page.getByTestId("active-filters")).toHaveText("1 active");

  // The filtered view as a file: the same two calls, with the columns a spreadsheet needs.
  const [csv] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  expect(csv.suggestedFilename()).toMatch(/^antix-traces-[0-9a-f]{8}-.*\.csv$/);
  const lines = readFileSync((await csv.path())!, "utf8").trim().split("\r\n");
  expect(lines[0]).toMatch(/^time,trace_id,endpoint_id,key,key_id,auth_mode,provider,model,input_tokens,/);
  expect(lines).toHaveLength(3);
  expect(lines.slice(1).every((l) => l.includes(",openai,gpt-4o-mini,"))).toBe(true);
  expect(lines.some((l) => l.includes(",obs-key,"))).toBe(true);
  await pick(page, "filter-auth", "virtual_key");
  await expect(page).toHaveURL(/auth=virtual_key/);
  await expect(await rows(page)).toHaveCount(1);
  await pick(page, "filter-key", key.id);
  await expect(page).toHaveURL(new RegExp(`key=${key.id}`));
  await expect(await rows(page)).toHaveCount(1);
  await expect((await rows(page)).first().getByTestId("model")).toHaveText("gpt-4o-mini");
  await shot(page, info, "traces-filtered");

  // Back undoes the last filter; Clear removes them all.
  await page.goBack();
  await expect(page).not.toHaveURL(/key=/);
  await expect(page.getByTestId("filter-key")).toHaveValue("");
  await page.getByTestId("clear-filters").click();
  await expect(await rows(page)).toHaveCount(TOTAL);
  const [jsonl] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-jsonl").click()]);
  const all = readFileSync((await jsonl.path())!, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  expect(all).toHaveLength(TOTAL);
  expect(all.filter((t) => t.status === 500)).toHaveLength(1);

  await pick(page, "filter-status", "error");
  await expect(await rows(page)).toHaveCount(1);
  await expect((await rows(page)).first().getByTestId("status")).toHaveText("500");
  await pick(page, "filter-status", "ok");
  await expect(await rows(page)).toHaveCount(TOTAL - 1);
  await page.getByTestId("clear-filters").click();

  await pick(page, "filter-range", "1h");
  await expect(await rows(page)).toHaveCount(TOTAL);
  await pick(page, "filter-range", "custom");
  await page.getByTestId("filter-from").fill("2030-01-01T00:00");
  await page.getByTestId("apply-filters").click();
  await expect(page.getByTestId("traces-empty")).toBeVisible();
  await page.getByTestId("filter-to").fill("2029-01-01T00:00");
  await page.getByTestId("apply-filters").click();
  await expect(page.getByTestId("error-to")).toHaveText("The end must be after the start.");
  await page.getByTestId("clear-filters").click();

  // Body search: the word in the prompt, highlighted in a snippet that shows the markup as text.
  await page.getByTestId("filter-q").fill("MARMOSET-42");
  await page.getByTestId("filter-q").press("Enter");
  await expect(page).toHaveURL(/q=MARMOSET-42/);
  await expect(await rows(page)).toHaveCount(1);
  const snippet = page.getByTestId("snippet");
  await expect(snippet).toContainText("marmoset-42");
  await expect(snippet).toContainText("<script>");
  await expect(snippet.locator("img, script")).toHaveCount(0);
  await shot(page, info, "traces-search");
  // Search syntax is text, and a too-short search says why.
  await page.getByTestId("filter-q").fill('" OR *');
  await page.getByTestId("filter-q").press("Enter");
  await expect(page.getByTestId("traces-empty")).toBeVisible();
  await page.getByTestId("filter-q").fill("ab");
  await page.getByTestId("filter-q").press("Enter");
  await expect(page.getByTestId("error-q")).toHaveText("Search for at least 3 characters.");

  // The search also works server-rendered, from a shared link (no JavaScript needed).
  const jsless = await context.browser()!.newContext({ javaScriptEnabled: false, storageState: await context.storageState() });
  const plain = await jsless.newPage();
  await plain.goto(`${process.env.ANTIX_E2E_BASE_URL}/endpoints/${endpointId}/traces?q=marmoset&status=ok`);
  await expect(plain.getByTestId("trace-row")).toHaveCount(1);
  await jsless.close();

  expect(await page.evaluate(() => (window as any).__xss)).toBeUndefined();
  expect(errors).toEqual([]);
});

test("the observation drawer: from a row, deep-linked, closed by Back", async ({ page, context }, info) => {
  const errors = watchForErrors(page);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await login(page);
  await page.goto(`/endpoints/${endpointId}/traces?model=gpt-4o-mini`);
  await expect(await rows(page)).toHaveCount(2);
  const xssRow = (await rows(page)).filter({ hasText: "BYOK" });
  const id = await xssRow.getAttribute("data-trace-id");
  await xssRow.getByTestId("trace-link").click();
  await expect(page).toHaveURL(new RegExp(`trace=${id}`));
  await expect(page).toHaveURL(/model=gpt-4o-mini/);
  const drawer = page.getByTestId("drawer");
  await expect(drawer.getByTestId("trace-detail")).toHaveAttribute("data-trace-id", id!);
  await expect(drawer.getByTestId("drawer-model")).toHaveText("gpt-4o-mini");
  // The prompt with markup is shown as text in the JSON viewer; nothing ran.
  await expect(drawer.getByTestId("request-json")).toContainText('"content"');
  await expect(drawer.getByTestId("request-json")).toContainText("<script>window.__xss=2</script>");
  await expect(drawer.locator("img[src=x], script")).toHaveCount(0);
  // The caller's key is redacted in the stored headers.
  await drawer.getByText("Request headers").click();
  await expect(drawer.getByTestId("request-headers")).toContainText("<redacted>");
  await expect(drawer.getByTestId("request-headers")).not.toContainText("sk-test-byok");
  // The cost broken down, with the price used.
  await expect(drawer.getByTestId("drawer-cost")).toContainText("Priced as gpt-4o-mini");
  await expect(drawer.getByTestId("drawer-cost-total")).toHaveText(/^\$/);
  await untilHydrated(
    page,
    () => drawer.getByTestId("copy-request").click(),
    () => expect(drawer.getByTestId("copy-request")).toHaveText("Copied", { timeout: 1000 }),
  );
  expect(await page.evaluate(() => navigator.clipboard.readText())).toContain("marmoset-42");
  await shot(page, info, "drawer");

  // Back closes the drawer and keeps the filters; Escape closes it too.
  await page.goBack();
  await expect(drawer).toHaveCount(0);
  await expect(page).toHaveURL(/model=gpt-4o-mini/);
  await page.goForward();
  await expect(drawer).toBeVisible();
  await page.keyboard.press("Escape");
  await expect(drawer).toHaveCount(0);

  // A deep link opens the drawer straight from the server.
  await page.goto(`/endpoints/${endpointId}/traces?trace=${id}`);
  await expect(page.getByTestId("drawer").getByTestId("drawer-model")).toHaveText("gpt-4o-mini");
  // A streamed call shows its reassembled answer, with a toggle to the raw events.
  await page.goto(`/endpoints/${endpointId}/traces?model=claude-sonnet-4-5`);
  await expect(await rows(page)).toHaveCount(8);
  await (await rows(page)).first().getByTestId("trace-link").click();
  await expect(drawer.getByTestId("response-json")).toContainText('"role": "assistant"');
  await untilHydrated(
    page,
    () => drawer.getByTestId("show-raw").click(),
    () => expect(drawer.getByTestId("response-raw")).toContainText("message_start", { timeout: 1000 }),
  );
  await drawer.getByTestId("show-assembled").click();
  await expect(drawer.getByTestId("response-json")).toBeVisible();
  // A trace id from elsewhere is simply not found.
  await page.goto(`/endpoints/${endpointId}/traces?trace=01a22098-05c4-7593-ba58-2624074ec352`);
  await expect(page.getByTestId("drawer-error")).toHaveText("Not found.");
  expect(errors).toEqual([]);
});

test("Activity: the agent session as one Gantt chart, a bar opens the drawer", async ({ page }, info) => {
  const errors = watchForErrors(page);
  await login(page);
  await page.goto(`/endpoints/${endpointId}`);
  await page.getByRole("link", { name: "Activity" }).click();
  await expect(page).toHaveURL(/\/activity$/);
  // Two sessions: the main agent (12 calls) and its sub-agent (3), linked.
  await expect(page.getByTestId("session-item")).toHaveCount(2);
  const main = page.getByTestId("session-item").filter({ hasText: "Refactor the billing module" });
  await expect(main.getByTestId("session-calls")).toHaveText("12 calls");
  await main.click();
  const gantt = page.getByTestId("gantt");
  await expect(gantt).toHaveAttribute("data-bars", "12");
  await expect(page.getByTestId("gantt-bar")).toHaveCount(12);
  // The parallel tool calls overlap, so they take separate lanes.
  expect(Number(await gantt.getAttribute("data-lanes"))).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId("related-sessions").locator("li")).toHaveCount(2);
  await shot(page, info, "activity");

  // Hover tells what a bar is; zoom changes the visible window; a bar opens the drawer.
  const bar = page.getByTestId("gantt-bar").first();
  await untilHydrated(
    page,
    () => bar.hover(),
    () => expect(page.getByTestId("gantt-hover")).toContainText("claude-sonnet-4-5", { timeout: 1000 }),
  );
  const before = await page.getByTestId("gantt-svg").getAttribute("viewBox");
  await page.getByTestId("zoom-in").click();
  await expect(page.getByTestId("gantt-svg")).not.toHaveAttribute("viewBox", before!);
  await page.getByTestId("zoom-reset").click();
  await expect(page.getByTestId("gantt-svg")).toHaveAttribute("viewBox", before!);
  const barId = await bar.getAttribute("data-trace-id");
  await bar.click();
  await expect(page).toHaveURL(new RegExp(`trace=${barId}`));
  await expect(page.getByTestId("drawer").getByTestId("trace-detail")).toHaveAttribute("data-trace-id", barId!);
  await shot(page, info, "activity-drawer");
  await page.goBack();
  await expect(page.getByTestId("drawer")).toHaveCount(0);

  // The sidebar search narrows the sessions by their first prompt.
  await page.getByTestId("session-search-input").fill("sub-agent");
  await page.getByTestId("session-search-input").press("Enter");
  await expect(page.getByTestId("session-item")).toHaveCount(1);
  await expect(page.getByTestId("session-view-calls")).toHaveText("3 calls");
  expect(errors).toEqual([]);
});

test("Overview: 30-day totals equal the sum over the traces", async ({ page }, info) => {
  const errors = watchForErrors(page);
  await login(page);
  const traces = antix(["traces", "list", "--endpoint", endpointId, "--limit", "100"])
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  expect(traces.length).toBe(TOTAL);
  const sum = (f: (t: any) => number) => traces.reduce((a, t) => a + (f(t) ?? 0), 0);
  const fmt = (n: number) => n.toLocaleString("en-US");
  await page.goto(`/endpoints/${endpointId}`);
  await expect(page.getByTestId("total-requests")).toHaveText(fmt(TOTAL));
  await expect(page.getByTestId("total-input")).toHaveText(`${fmt(sum((t) => t.input_tokens))} prompt`);
  await expect(page.getByTestId("total-output")).toHaveText(`${fmt(sum((t) => t.output_tokens))} completion`);
  // Virtual-key traffic is billed; the rest is the passthrough estimate.
  await expect(page.getByTestId("total-billed")).not.toHaveText("$0.00");
  await expect(page.getByTestId("total-estimated")).toContainText("(est.)");
  const byModel = page.getByTestId("by-model").getByTestId("breakdown-row");
  await expect(byModel).toHaveCount(4);
  const modelRequests = await page.getByTestId("by-model").getByTestId("breakdown-requests").allInnerTexts();
  expect(modelRequests.map(Number).reduce((a, b) => a + b, 0)).toBe(TOTAL);
  await expect(page.getByTestId("chart-requests").locator("rect[data-value]").last()).toHaveAttribute("data-value", String(TOTAL));
  await shot(page, info, "overview");
  // A breakdown row leads to the matching traces.
  await page.getByTestId("by-model").getByRole("link", { name: "claude-haiku-4-5" }).click();
  await expect(page).toHaveURL(/traces\?.*model=claude-haiku-4-5/);
  await expect(await rows(page)).toHaveCount(7);
  expect(errors).toEqual([]);
});
