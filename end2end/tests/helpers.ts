// Shared helpers for the portal specs.
import { expect, Page, TestInfo } from "@playwright/test";

export const ADMIN = {
  name: "Ada Lovelace",
  email: "ada@example.com",
  password: "analytical-engine-1843",
  org: "Acme Research",
};

/** Fails the test on any uncaught page error or CSP violation. */
export function watchForErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy|Refused to/i.test(m.text())) {
      errors.push(`csp: ${m.text()}`);
    }
  });
  return errors;
}

/**
 * Waits until the page is hydrated: a click on a hydrated-only control takes effect. Leptos
 * attaches handlers only once the WASM has loaded, so the click is retried until it works.
 */
export async function untilHydrated(page: Page, act: () => Promise<void>, check: () => Promise<void>) {
  await expect(async () => {
    await act();
    await check();
  }).toPass({ timeout: 15_000 });
}

/** Saves a full-page screenshot as a test artifact (under test-results/, not committed). */
export async function shot(page: Page, info: TestInfo, name: string) {
  await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
}

export async function login(page: Page, email = ADMIN.email, password = ADMIN.password) {
  await page.goto("/login");
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("welcome")).toBeVisible();
}
