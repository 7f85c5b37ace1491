// Drop-in calls with the official Node SDKs, pointed at an endpoint URL (unmodified clients:
// only base URL and key change). Prints one JSON line with what the calls returned.
//   node sdks.mjs <openai url> <anthropic url> <gemini url> <virtual key>
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { GoogleGenAI } from "@google/genai";

const [openaiUrl, anthropicUrl, geminiUrl, key] = process.argv.slice(2);
const out = {};

const openai = new OpenAI({ baseURL: openaiUrl, apiKey: key, maxRetries: 0 });
const chat = await openai.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Node chat: say hello" }],
});
out.chat = chat.choices[0].message.content;
let streamed = "";
const chatStream = await openai.chat.completions.create({
  model: "gpt-4o-mini",
  stream: true,
  messages: [{ role: "user", content: "Node chat stream: count to three" }],
});
for await (const chunk of chatStream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  // The usage the gateway asked for on the client's behalf is hidden from it.
  if (chunk.usage) out.leakedUsage = true;
}
out.chatStream = streamed;
const first = await openai.responses.create({ model: "gpt-4.1", input: "Node responses: plan a trip" });
const second = await openai.responses.create({
  model: "gpt-4.1",
  input: "and hotels",
  previous_response_id: first.id,
  stream: true,
});
const kinds = [];
for await (const ev of second) kinds.push(ev.type);
out.responsesStream = kinds.includes("response.completed");
out.embedding = (await openai.embeddings.create({ model: "text-embedding-3-small", input: "x" })).data[0].embedding.length;

const anthropic = new Anthropic({ baseURL: anthropicUrl, apiKey: key, maxRetries: 0 });
const msg = await anthropic.messages.create({
  model: "claude-haiku-4-5",
  max_tokens: 64,
  messages: [{ role: "user", content: "Node messages: say hello" }],
});
out.messages = msg.content[0].text;
const mstream = anthropic.messages.stream({
  model: "claude-haiku-4-5",
  max_tokens: 64,
  messages: [{ role: "user", content: "Node messages stream: say hello" }],
});
out.messagesStream = (await mstream.finalMessage()).content[0].text;

const genai = new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: geminiUrl } });
const g = await genai.models.generateContent({ model: "gemini-2.5-flash", contents: "Node gemini: say hello" });
out.gemini = g.text;
let gs = "";
for await (const c of await genai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "Node gemini stream" })) {
  gs += c.text ?? "";
}
out.geminiStream = gs;

// Errors come back in each provider's shape, so the SDKs raise their own error types.
try {
  await new OpenAI({ baseURL: openaiUrl, apiKey: "sk-vk-not-a-real-key", maxRetries: 0 }).chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "x" }],
  });
} catch (e) {
  out.openaiError = { status: e.status, isApiError: e instanceof OpenAI.APIError, message: e.message };
}
try {
  await new Anthropic({ baseURL: anthropicUrl, apiKey: key, maxRetries: 0 }).messages.create({
    model: "claude-haiku-4-5",
    max_tokens: 5,
    messages: [{ role: "user", content: "x" }],
    // The mock fails on request: a provider error reaches the SDK as its own error.
  }, { headers: { "x-mock": "fail=429;retry_after=7" } });
} catch (e) {
  out.anthropicError = { status: e.status, isApiError: e instanceof Anthropic.APIError };
}
console.log(JSON.stringify(out));
