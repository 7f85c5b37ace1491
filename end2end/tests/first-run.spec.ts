// First run: an empty database sends every visitor to setup; the first administrator is
// created there, lands in the portal, and can log out and back in. Runs before every other spec.
import { expect, test } from "@playwright/test";
import { ADMIN, setupToken, shot, untilHydrated, watchForErrors } from "./helpers";

test("first administrator, hydration, logout and login", async ({ page }, info) => {
  const errors = watchForErrors(page);

  // Any page redirects to setup while there is no administrator.
  await page.goto("/");
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByRole("heading", { name: "Welcome to Antix" })).toBeVisible();

  // A hydrated interaction: the password visibility toggle only works once the WASM runs.
  const password = page.getByLabel("Password", { exact: true });
  await untilHydrated(
    page,
    () => page.getByRole("button", { name: /Show password|Hide password/ }).click(),
    () => expect(password).toHaveAttribute("type", "text"),
  );
  await page.getByRole("button", { name: "Hide password" }).click();
  await expect(password).toHaveAttribute("type", "password");
  await shot(page, info, "setup");

  // Bad input gets field-level messages and creates nothing.
  await page.getByLabel("Your name").fill(ADMIN.name);
  await page.getByLabel("E-mail").fill("not-an-email");
  await password.fill("short");
  await page.getByLabel("Organization name").fill(ADMIN.org);
  await page.getByRole("button", { name: "Create administrator" }).click();
  await expect(page.locator("#f-token-error")).toContainText("setup token");
  await expect(page).toHaveURL(/\/setup$/);
  await shot(page, info, "setup-errors");

  // With the token from the server's log, the fields are checked too.
  await page.getByLabel("Setup token").fill(setupToken());
  await page.getByRole("button", { name: "Create administrator" }).click();
  await expect(page.locator("#f-email-error")).toContainText("e-mail address");
  await expect(page.locator("#f-password-error")).toContainText("10 characters");

  await page.getByLabel("E-mail").fill(ADMIN.email);
  await password.fill(ADMIN.password);
  await page.getByRole("button", { name: "Create administrator" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("welcome")).toHaveText(`Welcome, ${ADMIN.name}`);
  await expect(page.getByTestId("current-org")).toHaveText(`${ADMIN.org} · Admin`);
  await shot(page, info, "home");

  // Setup is closed now.
  await page.goto("/setup");
  await expect(page).toHaveURL(/\/$/);

  // The user menu (hydrated) logs out.
  await page.getByTestId("user-menu-button").click();
  await page.getByRole("menuitem", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login$/);

  // Wrong password: a readable error, still on the login page.
  await page.getByLabel("E-mail").fill(ADMIN.email);
  await page.getByLabel("Password", { exact: true }).fill("wrong password!");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.locator("[data-form-error]")).toContainText("Wrong e-mail or password");
  await shot(page, info, "login-error");

  await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("welcome")).toBeVisible();

  // The session cookie is HttpOnly and SameSite=Lax.
  const cookie = (await page.context().cookies()).find((c) => c.name === "antix_session");
  expect(cookie?.httpOnly).toBe(true);
  expect(cookie?.sameSite).toBe("Lax");

  expect(errors).toEqual([]);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the login form works as a plain HTML form", async ({ page }, info) => {
    await page.goto("/login");
    await page.getByLabel("E-mail").fill(ADMIN.email);
    await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByTestId("welcome")).toHaveText(`Welcome, ${ADMIN.name}`);
    await shot(page, info, "home-no-js");
  });
});

test("cross-site form posts are refused", async ({ request }) => {
  const res = await request.post("/api/logout", {
    headers: { Origin: "https://evil.example", "Content-Type": "application/x-www-form-urlencoded" },
    data: "",
    maxRedirects: 0,
  });
  expect(res.status()).toBe(403);
});
