// The real agent clients through an endpoint, offline against the mock provider: Codex CLI
// (`codex exec`, over HTTP and over a WebSocket) and Claude Code (`claude -p`). Two
// conversations started in one folder are two sessions; a resumed or continued one joins its
// own; the Activity tab shows them.
import { expect, test } from "@playwright/test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cliEndpoint, cliTraces, login, shot, watchForErrors } from "./helpers";

const bin = (name: string) => resolve(__dirname, "..", "node_modules", ".bin", name);

function codexConfig(baseUrl: string): string {
  // Offline: no update check, plugin sync, analytics or telemetry.
  return `model = "gpt-5.5"
model_provider = "antix"
check_for_update_on_startup = false
[analytics]
enabled = false
[feedback]
enabled = false
[otel]
exporter = "none"
log_user_prompt = false
[features]
plugins = false
remote_plugin = false
apps = false
api_key_model_discovery = false
[model_providers.antix]
name = "Antix"
base_url = "${baseUrl}"
env_key = "ANTIX_API_KEY"
wire_api = "responses"
`;
}

test("Codex CLI and Claude Code: one session per conversation, resumes join theirs", async ({ page }, info) => {
  test.setTimeout(240_000);
  const errors = watchForErrors(page);
  const ep = cliEndpoint("Agent clients");
  const work = mkdtempSync(join(tmpdir(), "antix-agents-"));
  const proj = join(work, "proj");
  mkdirSync(proj);
  writeFileSync(join(proj, "AGENTS.md"), "# Project notes\n\nAlways answer in English.\n");

  // Codex CLI, as a user configures it (README): base URL of the endpoint's OpenAI URL + /v1.
  const codexHome = join(work, "codex");
  mkdirSync(codexHome);
  writeFileSync(join(codexHome, "config.toml"), codexConfig(`${ep.urls.openai}/v1`));
  const codex = (args: string[]) => {
    const r = spawnSync(bin("codex"), ["exec", "--skip-git-repo-check", ...args], {
      cwd: proj,
      input: "",
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, CODEX_HOME: codexHome, ANTIX_API_KEY: ep.key },
    });
    expect(r.status, `codex ${args.join(" ")}\n${r.stderr}`).toBe(0);
    const plain = (r.stderr + r.stdout).replace(/\x1b\[[0-9;]*m/g, "");
    const id = /session id:\s*([0-9a-f-]{36})/.exec(plain)?.[1];
    expect(id, r.stderr).toBeTruthy();
    return id!;
  };
  const codexA = codex(["Say hello and list the files"]);
  const codexB = codex(["Write a haiku about compilers"]);
  expect(codex(["resume", "--last", "And one about linkers"])).toBe(codexB);
  // Over a WebSocket: proxied end to end.
  const codexWs = codex(["-c", "model_providers.antix.supports_websockets=true", "Answer over the socket"]);

  // Claude Code, with the endpoint's Anthropic URL and the virtual key.
  const claudeHome = join(work, "claude");
  mkdirSync(claudeHome);
  const claude = (args: string[]) => {
    const r = spawnSync(bin("claude"), ["-p", ...args, "--output-format", "json"], {
      cwd: proj,
      input: "",
      encoding: "utf8",
      timeout: 120_000,
      env: {
        ...process.env,
        HOME: claudeHome,
        CLAUDE_CONFIG_DIR: join(claudeHome, ".claude"),
        ANTHROPIC_BASE_URL: ep.urls.anthropic,
        ANTHROPIC_API_KEY: ep.key,
        DISABLE_TELEMETRY: "1",
        DISABLE_AUTOUPDATER: "1",
        DISABLE_ERROR_REPORTING: "1",
        DISABLE_BUG_COMMAND: "1",
        CLAUDE_CODE_ENABLE_TELEMETRY: "0",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      },
    });
    expect(r.status, `claude ${args.join(" ")}\n${r.stderr}\n${r.stdout}`).toBe(0);
    return JSON.parse(r.stdout.trim().split("\n").pop()!).session_id as string;
  };
  const claudeA = claude(["Fix the flaky login test"]);
  const claudeB = claude(["Write the release notes"]);
  expect(claude(["--continue", "Make them shorter"])).toBe(claudeB);

  // The sessions, as recorded.
  const expected: [string, number][] = [
    [`cx:${codexA}`, 1],
    [`cx:${codexB}`, 2],
    [`cc:${claudeA}`, 1],
    [`cc:${claudeB}`, 2],
  ];
  await expect(async () => {
    const traces = cliTraces(ep.id);
    for (const [key, calls] of expected) {
      expect(traces.filter((t) => t.session_key === key).length, key).toBe(calls);
    }
    const ws = traces.filter((t) => t.session_key === `cx:${codexWs}`);
    expect(ws.length).toBeGreaterThanOrEqual(1);
    expect(ws.every((t) => t.method === "WS" && t.outcome === "ok")).toBe(true);
  }).toPass({ timeout: 20_000 });
  const traces = cliTraces(ep.id);
  expect(traces.every((t) => t.auth_mode === "virtual_key")).toBe(true);
  // The real prompts, not the clients' boilerplate, name the sessions.
  await login(page);
  await page.goto(`/endpoints/${ep.id}/activity`);
  for (const preview of ["Say hello and list the files", "Write a haiku about compilers", "Fix the flaky login test", "Write the release notes", "Answer over the socket"]) {
    await expect(page.getByTestId("session-item").filter({ hasText: preview })).toHaveCount(1);
  }
  const haiku = page.getByTestId("session-item").filter({ hasText: "Write a haiku about compilers" });
  await expect(haiku.getByTestId("session-calls")).toHaveText("2 calls");
  await haiku.click();
  await expect(page.getByTestId("gantt-bar")).toHaveCount(2);
  await shot(page, info, "agents-activity");
  expect(errors).toEqual([]);
});
