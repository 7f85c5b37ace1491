// Shared helpers for the portal specs.
import { expect, Page, TestInfo } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

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
  }).toPass({ timeout: 30_000 });
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

/** The first-run setup token, as `antix admin setup-token` prints it for the test server. */
export function setupToken(): string {
  const data = process.env.ANTIX_E2E_DATA!;
  const out = execFileSync(resolve(__dirname, "../../target/release/antix"), ["admin", "setup-token"], {
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${data}/antix.db`,
      ANTIX_DATA_DIR: data,
      ANTIX_CONFIG: "",
      ANTIX_PUBLIC_URL: process.env.ANTIX_E2E_BASE_URL,
      ANTIX_LOG_FORMAT: "text",
    },
    encoding: "utf8",
  });
  const m = /Setup token: (\S+)/.exec(out);
  if (!m) throw new Error(`no setup token in: ${out}`);
  return m[1];
}

/** Runs the `antix` CLI against the test server's database. */
export function antixCli(args: string[], input?: string): string {
  const data = process.env.ANTIX_E2E_DATA!;
  return execFileSync(resolve(__dirname, "../../target/release/antix"), args, {
    input,
    encoding: "utf8",
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${data}/antix.db`,
      ANTIX_DATA_DIR: data,
      ANTIX_CONFIG: "",
      ANTIX_LOG: "warn",
      ANTIX_PUBLIC_URL: process.env.ANTIX_E2E_BASE_URL,
    },
  });
}

/** An org-shared endpoint made through the CLI, with its base URLs, a virtual key, and the
 * organization's credentials for every provider (the mock accepts any). */
export function cliEndpoint(name: string): { id: string; urls: Record<string, string>; key: string } {
  const ep = JSON.parse(antixCli(["endpoint", "create", "--as", ADMIN.email, "--name", name, "--shared", "--json"]).trim());
  const key = JSON.parse(antixCli(["key", "create", "--as", ADMIN.email, "--name", `${name} key`, "--json"]).trim());
  for (const p of ["openai", "anthropic", "gemini"]) {
    antixCli(["credential", "set", "--as", ADMIN.email, "--provider", p], `sk-org-${p}-e2e-1234\n`);
  }
  return { id: ep.id, urls: ep.urls, key: key.key };
}

/** The endpoint's traces, newest first, as `antix traces list` prints them. */
export function cliTraces(endpoint: string): any[] {
  return antixCli(["traces", "list", "--endpoint", endpoint, "--limit", "500"])
    .trim()
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}
