// The portal's WASM, script and stylesheet go out precompressed (the release build writes .br
// and .gz beside each file) under names that carry their content hash, so browsers keep them
// for a year without asking, and a new release's pages name new files: a browser never runs an
// old WASM against new pages. (Files without a hash in their name are revalidated instead:
// server/src/router.rs; a release build has none.)
import { expect, test } from "@playwright/test";

test("portal assets: hashed names cached for good, brotli or gzip as the browser asks", async ({ request }) => {
  // The page names the files it needs: the build's hashes, not fixed names.
  const page = await (await request.get("/login")).text();
  const wasm = page.match(/\/pkg\/antix\.[A-Za-z0-9_-]{22}\.wasm/)?.[0];
  const js = page.match(/\/pkg\/antix\.[A-Za-z0-9_-]{22}\.js/)?.[0];
  const css = page.match(/\/pkg\/antix\.[A-Za-z0-9_-]{22}\.css/)?.[0];
  expect(wasm, "the page names a content-hashed WASM").toBeTruthy();
  expect(js, "and script").toBeTruthy();
  expect(css, "and stylesheet").toBeTruthy();

  const forGood = "public, max-age=31536000, immutable";
  const raw = await request.get(wasm!, { headers: { "Accept-Encoding": "identity" } });
  expect(raw.status()).toBe(200);
  expect(raw.headers()["content-encoding"]).toBeUndefined();
  const rawSize = Number(raw.headers()["content-length"]);
  expect(rawSize).toBeGreaterThan(100_000);
  expect(raw.headers()["cache-control"]).toBe(forGood);

  for (const encoding of ["br", "gzip"]) {
    const res = await request.get(wasm!, { headers: { "Accept-Encoding": encoding } });
    expect(res.status()).toBe(200);
    expect(res.headers()["content-encoding"]).toBe(encoding);
    expect(res.headers()["content-type"]).toBe("application/wasm");
    expect(res.headers()["vary"]?.toLowerCase()).toContain("accept-encoding");
    expect(res.headers()["cache-control"]).toBe(forGood);
    // What went over the wire is the compressed file, a fraction of the WASM.
    expect(Number(res.headers()["content-length"])).toBeLessThan(rawSize / 2);
  }

  for (const file of [js!, css!]) {
    const res = await request.get(file, { headers: { "Accept-Encoding": "br" } });
    expect(res.status()).toBe(200);
    expect(res.headers()["content-encoding"]).toBe("br");
    expect(res.headers()["cache-control"]).toBe(forGood);
  }

  // A browser that asks anyway (a reload) gets a 304 while the file is unchanged.
  const lastModified = raw.headers()["last-modified"];
  expect(lastModified).toBeTruthy();
  const again = await request.get(wasm!, {
    headers: { "Accept-Encoding": "identity", "If-Modified-Since": lastModified },
  });
  expect(again.status()).toBe(304);
  expect(again.headers()["cache-control"]).toBe(forGood);

  // Unknown files are plain 404s, not cached.
  const missing = await request.get("/pkg/antix.AAAAAAAAAAAAAAAAAAAAAA.wasm");
  expect(missing.status()).toBe(404);
  expect(missing.headers()["cache-control"]).toBeUndefined();
});
