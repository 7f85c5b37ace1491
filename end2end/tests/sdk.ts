// Calls through the gateway with the official Python SDKs (installed in end2end/.venv), as a
// user's script would.
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";

const python = resolve(__dirname, "..", ".venv", "bin", "python");

/** Runs a chat completion with the `openai` SDK; returns the status it ended with. */
export function openaiChat(
  baseUrl: string,
  apiKey: string,
  maxTokens?: number,
): { status: number; message: string } {
  const script = `
import json, sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
extra = {"max_tokens": int(sys.argv[3])} if len(sys.argv) > 3 else {}
try:
    r = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello from the portal test"}], **extra)
    print(json.dumps({"status": 200, "message": r.choices[0].message.content}))
except openai.APIStatusError as e:
    print(json.dumps({"status": e.status_code, "message": str(e)}))
`;
  const out = execFileSync(
    python,
    ["-c", script, baseUrl, apiKey, ...(maxTokens === undefined ? [] : [String(maxTokens)])],
    { encoding: "utf8" },
  );
  return JSON.parse(out.trim().split("\n").pop()!);
}
