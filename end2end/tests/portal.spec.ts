// The portal as its users drive it: endpoints (personal, org-shared, the limit), copying URLs,
// settings (rename, duplicate, archive → 410 for SDKs), provider credentials, virtual keys used
// through the proxy until their budget runs out, invitations and roles.
import { Browser, expect, Page, test } from "@playwright/test";
import { ADMIN, login, shot, untilHydrated, watchForErrors } from "./helpers";
import { openaiChat } from "./sdk";

test.describe.configure({ mode: "serial" });

async function createEndpoint(page: Page, name: string, scope: "personal" | "org_shared" = "personal") {
  await page.goto("/");
  await page.getByLabel("Display Name").fill(name);
  if (scope === "org_shared") {
    await page.getByTestId("scope-org-shared").check();
  }
  await page.getByRole("button", { name: "Create", exact: true }).click();
}

async function hydrated(page: Page) {
  // The user menu toggles only once the WASM is running.
  await untilHydrated(
    page,
    () => page.getByTestId("user-menu-button").click(),
    () => expect(page.getByTestId("user-menu")).toBeVisible(),
  );
  await page.getByTestId("user-menu-button").click();
}

test("endpoints: create, copy the URL, rename, duplicate", async ({ page, context }, info) => {
  const errors = watchForErrors(page);
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await login(page);
  await hydrated(page);
  await shot(page, info, "endpoints-empty");

  await createEndpoint(page, "Personal playground");
  await expect(page).toHaveURL(/\/endpoints\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("endpoint-name")).toHaveText("Personal playground");
  const url = await page.getByTestId("url-openai").getByTestId("url").innerText();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/[0-9a-f-]{36}\/openai$/);
  await untilHydrated(
    page,
    () => page.getByTestId("url-openai").getByTestId("copy-url").click(),
    () => expect(page.getByTestId("url-openai").getByTestId("copy-url")).toHaveText("Copied"),
  );
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(url);
  await shot(page, info, "endpoint-detail");

  // Settings: rename.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Display name").fill("Playground (renamed)");
  await page.getByTestId("rename-form").getByRole("button", { name: "Save" }).click();
  await expect(page.getByTestId("endpoint-name")).toHaveText("Playground (renamed)");
  await shot(page, info, "endpoint-settings");

  // Settings: trace retention. A bad value is a field error; a good one is kept.
  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByTestId("retention-inherited")).toContainText("follow the organization");
  await page.getByTestId("retention-days").fill("two weeks");
  await page.getByTestId("save-retention").click();
  await expect(page.locator("#retention-error")).toContainText("whole number of days");
  await page.getByTestId("retention-days").fill("14");
  await page.getByTestId("save-retention").click();
  await expect(page.getByTestId("retention-saved")).toBeVisible();
  await page.reload();
  await expect(page.getByTestId("retention-days")).toHaveValue("14");

  // Duplicate as an org endpoint: a new URL, the original untouched.
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByTestId("duplicate").click();
  await expect(page.getByTestId("endpoint-name")).toHaveText("Playground (renamed)");
  await expect(page.locator("text=Org-shared").first()).toBeVisible();
  const dupUrl = await page.getByTestId("url-openai").getByTestId("url").innerText();
  expect(dupUrl).not.toBe(url);

  await createEndpoint(page, "Team shared", "org_shared");
  await expect(page.getByTestId("endpoint-name")).toHaveText("Team shared");
  await page.goto("/");
  await expect(page.getByTestId("endpoint-row")).toHaveCount(3);
  await shot(page, info, "endpoints");
  expect(errors).toEqual([]);
});

test("the 11th personal endpoint is refused", async ({ page }, info) => {
  await login(page);
  for (let i = 2; i <= 10; i++) {
    await createEndpoint(page, `Personal ${i}`);
    await expect(page.getByTestId("endpoint-name")).toHaveText(`Personal ${i}`);
  }
  await page.goto("/");
  await expect(page.getByText("You have 10 of 10 personal endpoints")).toBeVisible();
  await page.getByLabel("Display Name").fill("Eleventh");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.locator("#f-scope-error")).toContainText("10 personal endpoints");
  await expect(page).toHaveURL(/\/$/);
  await shot(page, info, "endpoint-limit");
});

test("credentials: set and test; virtual key through the proxy until its budget runs out", async ({ page, context }, info) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await login(page);
  await page.goto("/credentials");
  const openai = page.getByTestId("cred-openai");
  await openai.getByLabel("API key").fill("sk-org-openai-key-1234");
  await openai.getByRole("button", { name: "Save" }).click();
  await expect(openai.getByText("…1234")).toBeVisible();
  await untilHydrated(
    page,
    () => openai.getByTestId("test-credential").click(),
    () => expect(openai.getByTestId("test-result")).toContainText("Connected"),
  );
  await shot(page, info, "credentials");

  // An endpoint for this key, then the key with a tiny lifetime budget.
  await createEndpoint(page, "Billing demo", "org_shared");
  const base = await page.getByTestId("url-openai").getByTestId("url").innerText();
  await page.goto("/keys");
  await untilHydrated(
    page,
    () => page.getByTestId("toggle-create-key").click(),
    () => expect(page.getByTestId("key-form")).toBeVisible(),
  );
  await page.getByLabel("Name", { exact: true }).fill("demo-key");
  await page.getByLabel("Lifetime budget, USD").fill("0.0001");
  await page.getByRole("button", { name: "Create key" }).click();
  const keyText = page.getByTestId("new-key");
  await expect(keyText).toHaveText(/^sk-vk-[0-9A-Za-z]{49}$/);
  const key = await keyText.innerText();
  await page.getByTestId("copy-key").click();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  await shot(page, info, "key-created");
  await page.getByRole("button", { name: "Done" }).click();

  // The first call goes through (billed to the org: its estimate, with max_tokens 1, fits in
  // the budget); once the spend leaves no room for another estimate, calls are refused.
  const first = openaiChat(base, key, 1);
  expect(first.status).toBe(200);
  let refused = openaiChat(base, key, 1);
  for (let i = 0; i < 5 && refused.status === 200; i++) refused = openaiChat(base, key, 1);
  expect(refused.status).toBe(429);
  expect(refused.message).toMatch(/lifetime budget of \$0\.0001/i);
  await page.reload();
  const row = page.getByTestId("key-row").filter({ hasText: "demo-key" });
  await expect(row.getByTestId("budget-line")).toContainText("lifetime");
  await expect(row).not.toContainText("never");
  await shot(page, info, "keys");

  // Revoked keys stop working (the key cache of this replica is dropped at once).
  await row.getByTestId("revoke").click();
  await expect(row.getByText("Revoked")).toBeVisible();
  expect(openaiChat(base, key).status).toBe(401);
});

test("archive: the endpoint answers 410 to SDKs afterwards", async ({ page }, info) => {
  await login(page);
  await createEndpoint(page, "Short-lived", "org_shared");
  const base = await page.getByTestId("url-openai").getByTestId("url").innerText();
  expect(openaiChat(base, "sk-proj-byok-portal-test").status).toBe(200);
  await page.getByRole("link", { name: "Settings" }).click();
  await untilHydrated(
    page,
    () => page.getByLabel(/Type .* to confirm/).fill("Short-lived"),
    () => expect(page.getByRole("button", { name: "Archive endpoint" })).toBeEnabled(),
  );
  await page.getByRole("button", { name: "Archive endpoint" }).click();
  await expect(page.getByTestId("archived-note")).toBeVisible();
  await shot(page, info, "archived");
  const after = openaiChat(base, "sk-proj-byok-portal-test");
  expect(after.status).toBe(410);
  expect(after.message).toContain("archived");
  // Still listed, marked archived, with its traffic.
  await page.goto("/");
  const row = page.getByTestId("endpoint-row").filter({ hasText: "Short-lived" });
  await expect(row.getByText("Archived")).toBeVisible();
  await expect(row).toContainText("2");
});

async function newUser(browser: Browser, inviteUrl: string, name: string, password: string): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(inviteUrl);
  await expect(page.getByTestId("invite-intro")).toContainText("Join Acme Research as Member");
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Create account and join" }).click();
  await expect(page.getByTestId("welcome")).toHaveText(`Welcome, ${name}`);
  return page;
}

test("invitations, roles, and what members may not do", async ({ page, browser }, info) => {
  await login(page);
  await page.goto("/members");
  // The last admin cannot demote themselves.
  await hydrated(page);
  const me = page.getByTestId("member-row").filter({ hasText: ADMIN.email });
  await me.getByTestId("role-select").selectOption("member");
  await expect(page.getByRole("alert").filter({ hasText: "at least one admin" })).toBeVisible();

  await page.getByLabel("E-mail").fill("bob@example.com");
  await page.getByRole("button", { name: "Create invitation link" }).click();
  const inviteUrl = await page.getByTestId("invite-url").innerText();
  expect(inviteUrl).toMatch(/\/invite\/[0-9A-Za-z]{43}$/);
  await shot(page, info, "members-invite");

  const bob = await newUser(browser, inviteUrl, "Bob Builder", "bob's long password");
  // A member cannot create org-shared endpoints: the option is disabled, with the reason.
  await expect(bob.getByTestId("scope-org-shared")).toBeDisabled();
  await expect(bob.getByTestId("org-shared-reason")).toBeVisible();
  // Nor see the admin's personal endpoints; the org-shared ones, yes.
  await expect(bob.getByTestId("endpoint-row").filter({ hasText: "Personal playground" })).toHaveCount(0);
  await expect(bob.getByTestId("endpoint-row").filter({ hasText: "Team shared" })).toHaveCount(1);
  await shot(bob, info, "member-endpoints");
  // The link works once.
  const again = await (await browser.newContext()).newPage();
  await again.goto(inviteUrl);
  await expect(again.getByTestId("invite-invalid")).toContainText("already been used");

  // Limits are admin work: with members allowed to issue keys, Bob issues one for the shared
  // endpoint; the admin sets its budget; Bob sees the limits, may rename the key, not lift them.
  await page.goto("/members");
  await page.getByLabel("Members may issue virtual keys for their own endpoints").check();
  await page.getByRole("button", { name: "Save settings" }).click();
  await expect(page.getByText("Saved.")).toBeVisible();
  await bob.goto("/keys");
  await untilHydrated(
    bob,
    () => bob.getByTestId("toggle-create-key").click(),
    () => expect(bob.getByTestId("key-form")).toBeVisible(),
  );
  await bob.getByLabel("Name", { exact: true }).fill("bob-key");
  await bob.getByTestId("key-form").getByLabel(/Team shared/).check();
  await bob.getByRole("button", { name: "Create key" }).click();
  await expect(bob.getByTestId("new-key")).toHaveText(/^sk-vk-/);
  await bob.getByRole("button", { name: "Done" }).click();
  await page.goto("/keys");
  await untilHydrated(
    page,
    () => page.getByTestId("key-row").filter({ hasText: "bob-key" }).getByRole("button", { name: "Edit" }).click(),
    () => expect(page.getByRole("button", { name: "Save limits" })).toBeVisible(),
  );
  await page.getByLabel("Lifetime budget, USD").fill("5");
  await page.getByRole("button", { name: "Save limits" }).click();
  await expect(page.getByTestId("key-row").filter({ hasText: "bob-key" }).getByTestId("budget-line")).toContainText("$5.00");
  await bob.reload();
  await untilHydrated(
    bob,
    () => bob.getByTestId("key-row").filter({ hasText: "bob-key" }).getByRole("button", { name: "Edit" }).click(),
    () => expect(bob.getByTestId("limits-read-only")).toBeVisible(),
  );
  await expect(bob.getByLabel("Lifetime budget, USD")).toBeDisabled();
  await expect(bob.getByLabel("Lifetime budget, USD")).toHaveValue("5");
  await expect(bob.getByTestId("allow-unmetered")).toBeDisabled();
  await bob.getByLabel("Name", { exact: true }).last().fill("bob-renamed");
  await bob.getByRole("button", { name: "Save name" }).click();
  await expect(bob.getByTestId("key-row").filter({ hasText: "bob-renamed" })).toBeVisible();
  await expect(bob.getByTestId("key-row").filter({ hasText: "bob-renamed" }).getByTestId("budget-line")).toContainText("$5.00");
  await shot(bob, info, "member-key-read-only");

  // The admin promotes Bob; now he may share.
  await page.goto("/members");
  await hydrated(page);
  const bobRow = page.getByTestId("member-row").filter({ hasText: "bob@example.com" });
  await expect(bobRow).toBeVisible();
  const saved = page.waitForResponse((r) => r.url().includes("/api/set_role"));
  await bobRow.getByTestId("role-select").selectOption("admin");
  expect((await saved).ok()).toBe(true);
  await page.reload();
  await expect(bobRow.getByTestId("role-select")).toHaveValue("admin");
  await bob.goto("/");
  await expect(bob.getByTestId("scope-org-shared")).toBeEnabled();
  await shot(page, info, "members");
});

test("an endpoint can take virtual keys only", async ({ page }, info) => {
  await login(page);
  await createEndpoint(page, "Keys only", "org_shared");
  const base = await page.getByTestId("url-openai").getByTestId("url").innerText();
  expect(openaiChat(base, "sk-proj-byok-own-key").status).toBe(200);
  await page.getByRole("link", { name: "Settings" }).click();
  const box = page.getByTestId("passthrough");
  await expect(box).toBeChecked();
  await box.uncheck();
  await page.getByTestId("save-auth").click();
  await expect(page.getByTestId("auth-saved")).toBeVisible();
  await shot(page, info, "endpoint-keys-only");
  const refused = openaiChat(base, "sk-proj-byok-own-key");
  expect(refused.status).toBe(403);
  expect(refused.message).toContain("virtual keys only");
  // The setting shows as saved after a reload, and turning it back on lets own keys through.
  await page.reload();
  await expect(page.getByTestId("passthrough")).not.toBeChecked();
  await page.getByTestId("passthrough").check();
  await page.getByTestId("save-auth").click();
  await expect(page.getByTestId("auth-saved")).toBeVisible();
  expect(openaiChat(base, "sk-proj-byok-own-key").status).toBe(200);
});

test("API tokens: issue one (shown once), call the management API with it, revoke it", async ({ page, request }, info) => {
  const errors = watchForErrors(page);
  await login(page);
  await page.goto("/members");
  await hydrated(page);
  const form = page.getByTestId("api-token-form");
  // A token needs a name: a field message, nothing issued.
  await form.getByRole("button", { name: "Create token" }).click();
  await expect(page.locator("#f-token-name-error")).toContainText("Enter a name");
  await form.getByLabel("Name").fill("terraform");
  await form.getByLabel("Access").selectOption("write");
  await form.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.getByTestId("api-token-secret").innerText()).trim();
  expect(secret).toMatch(/^antix_api_[A-Za-z0-9]{49}$/);
  const row = page.getByTestId("api-token-row").filter({ hasText: "terraform" });
  await expect(row).toContainText("read-write");
  await expect(row).not.toContainText(secret);
  await shot(page, info, "api-tokens");

  const auth = { Authorization: `Bearer ${secret}` };
  const created = await request.post("/api/v1/endpoints", { headers: auth, data: { name: "From terraform" } });
  expect(created.status()).toBe(201);
  const endpoint = await created.json();
  expect(endpoint.scope).toBe("org_shared");
  const list = await request.get("/api/v1/endpoints", { headers: auth });
  expect(list.status()).toBe(200);
  expect((await list.json()).data.map((e: any) => e.name)).toContain("From terraform");
  // What the API created is the portal's too.
  await page.goto("/");
  await expect(page.getByTestId("endpoint-row").filter({ hasText: "From terraform" })).toBeVisible();

  await page.goto("/members");
  await hydrated(page);
  await page.getByTestId("api-token-row").filter({ hasText: "terraform" }).getByTestId("revoke-api-token").click();
  await expect(page.getByTestId("api-token-row").filter({ hasText: "terraform" }).getByTestId("api-token-revoked")).toBeVisible();
  const after = await request.get("/api/v1/endpoints", { headers: auth });
  expect(after.status()).toBe(401);
  expect((await after.json()).error.type).toBe("unauthenticated");
  expect(errors).toEqual([]);
});
