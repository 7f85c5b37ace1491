// The portal's WASM and scripts go out precompressed (the release build writes .br and .gz
// beside each file) and are revalidated, never reused on a guess: a new release must not run
// an old WASM against its pages.
import { expect, test } from "@playwright/test";

test("portal assets: brotli or gzip as the browser asks, revalidated with 304", async ({ request }) => {
  const raw = await request.get("/pkg/antix.wasm", { headers: { "Accept-Encoding": "identity" } });
  expect(raw.status()).toBe(200);
  expect(raw.headers()["content-encoding"]).toBeUndefined();
  const rawSize = Number(raw.headers()["content-length"]);
  expect(rawSize).toBeGreaterThan(100_000);
  expect(raw.headers()["cache-control"]).toBe("no-cache");

  let lastModified = "";
  for (const encoding of ["br", "gzip"]) {
    const res = await request.get("/pkg/antix.wasm", { headers: { "Accept-Encoding": encoding } });
    expect(res.status()).toBe(200);
    expect(res.headers()["content-encoding"]).toBe(encoding);
    expect(res.headers()["content-type"]).toBe("application/wasm");
    expect(res.headers()["vary"]?.toLowerCase()).toContain("accept-encoding");
    expect(res.headers()["cache-control"]).toBe("no-cache");
    // What went over the wire is the compressed file, a fraction of the WASM.
    expect(Number(res.headers()["content-length"])).toBeLessThan(rawSize / 2);
    if (encoding === "br") lastModified = res.headers()["last-modified"];
  }

  const js = await request.get("/pkg/antix.js", { headers: { "Accept-Encoding": "br" } });
  expect(js.headers()["content-encoding"]).toBe("br");

  // Unchanged since the browser's copy (each encoding is its own file, with its own date):
  // 304, no body.
  expect(lastModified).toBeTruthy();
  const again = await request.get("/pkg/antix.wasm", {
    headers: { "Accept-Encoding": "br", "If-Modified-Since": lastModified },
  });
  expect(again.status()).toBe(304);
  expect(again.headers()["cache-control"]).toBe("no-cache");
});
