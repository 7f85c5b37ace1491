// Budget alerts as an admin sets them up: field messages for bad settings, a webhook (a local
// receiver standing in for Slack), a signed test delivery, and a real alert that the server's
// background loop fires and delivers after a virtual-key call crosses the organization's
// monthly alert budget.
import { expect, test } from "@playwright/test";
import { createHmac } from "node:crypto";
import { createServer, IncomingHttpHeaders } from "node:http";
import { AddressInfo } from "node:net";
import { ADMIN, cliEndpoint, login, shot, untilHydrated, watchForErrors } from "./helpers";

type Post = { headers: IncomingHttpHeaders; body: string };

async function receiver(): Promise<{ url: string; posts: Post[]; close: () => void }> {
  const posts: Post[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      posts.push({ headers: req.headers, body });
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/slack`, posts, close: () => server.close() };
}

function verify(post: Post, secret: string) {
  const sig = String(post.headers["x-antix-signature"]);
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(sig);
  expect(m, sig).not.toBeNull();
  const expected = createHmac("sha256", secret).update(`${m![1]}.${post.body}`).digest("hex");
  expect(m![2]).toBe(expected);
  expect(Math.abs(Number(m![1]) - Date.now() / 1000)).toBeLessThan(120);
}

test("budget alerts: validated settings, a signed test delivery, and a real alert delivered by the server", async ({ page }, info) => {
  test.setTimeout(120_000);
  const errors = watchForErrors(page);
  const hook = await receiver();
  const ep = cliEndpoint("Alerts demo");
  await login(page);
  await page.goto("/members");
  const section = page.getByTestId("budget-alerts");
  await expect(section.getByRole("heading", { name: "Budget alerts" })).toBeVisible();
  const form = section.getByTestId("alerts-form");

  // Bad settings: a message under each field, nothing saved.
  await untilHydrated(
    page,
    async () => {
      await form.getByLabel("Thresholds").fill("fifty");
      await form.getByLabel("Webhook URL").fill("ftp://example.com/hook");
      await form.getByRole("button", { name: "Save alerts" }).click();
    },
    () => expect(page.locator("#f-thresholds-error")).toContainText("percentages"),
  );
  await expect(page.locator("#f-webhook-error")).toContainText("URL");
  await expect(section.getByTestId("alerts-send-test")).toBeDisabled();

  await form.getByLabel("Webhook URL").fill(hook.url);
  await form.getByLabel("Thresholds").fill("100, 50, 80");
  await form.getByLabel("Organization monthly alert budget").fill("0.000001");
  await form.getByRole("button", { name: "Save alerts" }).click();
  await expect(section.getByTestId("alerts-saved")).toBeVisible();
  // Kept in order, as read.
  await page.reload();
  await expect(form.getByLabel("Thresholds")).toHaveValue("50, 80, 100");
  await expect(form.getByLabel("Webhook URL")).toHaveValue(hook.url);
  const secret = (await section.getByTestId("alerts-secret").innerText()).trim();
  expect(secret).toMatch(/^whsec_[0-9a-f]{64}$/);

  // The test button posts a signed sample now.
  await untilHydrated(
    page,
    () => section.getByTestId("alerts-send-test").click(),
    () => expect(section.getByTestId("alerts-test-result")).toContainText("Delivered (HTTP 200)", { timeout: 3_000 }),
  );
  const sampled = hook.posts.find((p) => JSON.parse(p.body).alert.test);
  expect(sampled).toBeDefined();
  verify(sampled!, secret);
  const sample = JSON.parse(sampled!.body);
  expect(sample.alert.test).toBe(true);
  expect(sample.text).toContain("This is a test");

  // A virtual-key call spends more than the organization's tiny alert budget: the server's
  // alert loop (every 15 s) fires 50, 80 and 100 % at once and delivers only the 100 % one.
  const res = await fetch(`${ep.urls.openai}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ep.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "spend a little" }] }),
  });
  expect(res.status).toBe(200);
  // Earlier specs' keys may have alerts of their own: this one is the organization's.
  const orgPosts = () =>
    hook.posts.filter((p) => {
      const a = JSON.parse(p.body).alert;
      return a.subject === "org" && !a.test;
    });
  await expect.poll(() => orgPosts().length, { timeout: 60_000, intervals: [1_000] }).toBe(1);
  const real = orgPosts()[0];
  verify(real, secret);
  const alert = JSON.parse(real.body);
  expect(alert.alert.threshold_percent).toBe(100);
  expect(alert.alert.period).toBe("month");
  expect(alert.text).toContain(`Organization “${ADMIN.org}”`);

  await page.reload();
  const rows = section.getByTestId("alert-row").filter({ hasText: `Organization “${ADMIN.org}”` });
  await expect(rows).toHaveCount(3);
  await expect(rows.filter({ hasText: "threshold 100%" })).toContainText("delivered");
  await expect(rows.filter({ hasText: "threshold 80%" })).toContainText("Passed over");
  await shot(page, info, "budget-alerts");
  hook.close();
  expect(errors).toEqual([]);
});
