// Browser tests of the portal, in Debian's Chromium (never a downloaded browser).
//
// One server for the whole run, on a fresh data folder, so the first-run flow really starts
// from an empty database. The folder's path is exported to the environment so that worker
// processes (which re-read this file) see the same one.
import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const port = Number(process.env.E2E_PORT ?? 3107);
const mockPort = Number(process.env.E2E_MOCK_PORT ?? port + 1);
process.env.ANTIX_E2E_MOCK_URL = `http://127.0.0.1:${mockPort}`;
process.env.ANTIX_E2E_DATA ??= mkdtempSync(join(tmpdir(), "antix-e2e-"));
process.env.ANTIX_E2E_BASE_URL = `http://127.0.0.1:${port}`;
const data = process.env.ANTIX_E2E_DATA;
const root = resolve(__dirname, "..");

export default defineConfig({
  testDir: "./tests",
  outputDir: "./test-results",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  reporter: [["list"]],
  use: {
    baseURL: process.env.ANTIX_E2E_BASE_URL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [
    { name: "first-run", testMatch: /first-run\.spec\.ts/ },
    {
      name: "portal",
      testIgnore: /(first-run|observability|agents|node-sdks|gantt-scale|routing|alerts)\.spec\.ts/,
      dependencies: ["first-run"],
    },
    {
      name: "observability",
      testMatch: /(observability|agents|node-sdks|gantt-scale|routing|alerts)\.spec\.ts/,
      dependencies: ["portal"],
    },
  ],
  webServer: [
    {
      // The mock provider the gateway forwards to (no real provider is reachable here).
      command: `${root}/target/release/antix mock-provider --listen 127.0.0.1:${mockPort}`,
      url: `http://127.0.0.1:${mockPort}/_mock/stats`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
    command: `${root}/target/release/antix serve`,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ANTIX_LISTEN: `127.0.0.1:${port}`,
      ANTIX_PUBLIC_URL: `http://127.0.0.1:${port}`,
      DATABASE_URL: `sqlite://${data}/antix.db`,
      ANTIX_DATA_DIR: data,
      ANTIX_CONFIG: "",
      ANTIX_LOG_FORMAT: "text",
      ANTIX_UPSTREAM_OPENAI: `http://127.0.0.1:${mockPort}`,
      ANTIX_UPSTREAM_ANTHROPIC: `http://127.0.0.1:${mockPort}`,
      ANTIX_UPSTREAM_GEMINI: `http://127.0.0.1:${mockPort}`,
      LEPTOS_SITE_ROOT: `${root}/target/site`,
      // Lets organization-chosen targets be local (the alerts spec's webhook receiver).
      ANTIX_DEV_MODE: "true",
    },
    },
  ],
});
