// The Activity tab at agent scale: sessions of 500 and 2,000 calls render, stay interactive
// (hover, zoom, drag, open a call), and show the tools the agent called between calls. Prints
// what it measured (load and hydration time, time per interaction, frame intervals while
// zooming and dragging); performance is reported here, never asserted.
import { expect, Page, test } from "@playwright/test";
import { antixCli, cliEndpoint, login, shot, untilHydrated, watchForErrors } from "./helpers";

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Zooms in and out and drags across the chart, timing each interaction's handler and layout,
 * and the frame intervals meanwhile. */
async function interact(page: Page): Promise<{ work: number[]; frames: number[] }> {
  return page.evaluate(async () => {
    const frames: number[] = [];
    let last = performance.now();
    let running = true;
    const tick = (t: number) => {
      frames.push(t - last);
      last = t;
      if (running) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r(null)));
    const svg = document.querySelector('[data-testid="gantt-svg"]') as SVGElement;
    const chart = svg.parentElement as HTMLElement;
    const work: number[] = [];
    const timed = (f: () => void) => {
      const t = performance.now();
      f();
      svg.getBoundingClientRect(); // style and layout of the change, inside the measurement
      work.push(performance.now() - t);
    };
    for (let i = 0; i < 15; i++) {
      timed(() => (document.querySelector('[data-testid="zoom-in"]') as HTMLElement).click());
      await nextFrame();
      timed(() => (document.querySelector('[data-testid="zoom-out"]') as HTMLElement).click());
      await nextFrame();
    }
    const r = chart.getBoundingClientRect();
    const at = (f: number) => ({ clientX: r.left + r.width * f, clientY: r.top + 5, bubbles: true, button: 0 });
    for (let i = 0; i < 5; i++) {
      timed(() => chart.dispatchEvent(new MouseEvent("mousedown", at(0.2))));
      for (let k = 1; k <= 10; k++) {
        timed(() => chart.dispatchEvent(new MouseEvent("mousemove", at(0.2 + k * 0.04))));
        await nextFrame();
      }
      timed(() => chart.dispatchEvent(new MouseEvent("mouseup", at(0.6))));
      await nextFrame();
      timed(() => (document.querySelector('[data-testid="zoom-reset"]') as HTMLElement).click());
      await nextFrame();
    }
    running = false;
    return { work, frames: frames.slice(1) };
  });
}

test("sessions of 500 and 2,000 calls render and stay interactive", async ({ page }, info) => {
  test.setTimeout(180_000);
  const errors = watchForErrors(page);
  const ep = cliEndpoint("Agent scale");
  await login(page);
  for (const calls of [500, 2000]) {
    antixCli(["traces", "generate", "--endpoint", ep.id, "--session-calls", String(calls), "--seed", String(calls)]);
    const key = `cc:generated-${calls}-${calls}`;
    const url = `/endpoints/${ep.id}/activity?session=${encodeURIComponent(key)}`;
    const started = Date.now();
    await page.goto(url);
    await expect(page.getByTestId("gantt")).toHaveAttribute("data-bars", String(calls));
    const rendered = Date.now() - started;
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      return { server: n.responseEnd - n.requestStart, domReady: n.domContentLoadedEventEnd };
    });
    // Hydrated: a hover names the call.
    await untilHydrated(
      page,
      () => page.getByTestId("gantt-bar").nth(calls / 2).dispatchEvent("mouseover"),
      () => expect(page.getByTestId("gantt-hover")).toContainText("claude-sonnet-4-5", { timeout: 1000 }),
    );
    const hydrated = Date.now() - started;
    await expect(page.getByTestId("gantt-bar")).toHaveCount(calls);
    // The tools called between calls are marked, and named.
    const marks = page.getByTestId("gantt-tools");
    expect(await marks.count()).toBeGreaterThan(calls / 3);
    expect(await marks.first().getAttribute("data-tools")).toMatch(/^(Read|Edit|Bash|Grep|Write|Glob)/);
    const m = await interact(page);
    const line = `Gantt ${calls} calls: page ${rendered} ms (server ${Math.round(nav.server)} ms, DOM ready ${Math.round(nav.domReady)} ms), hydrated ${hydrated} ms; per interaction p50 ${pct(m.work, 50).toFixed(1)} ms p95 ${pct(m.work, 95).toFixed(1)} ms; frame interval p50 ${pct(m.frames, 50).toFixed(1)} ms p95 ${pct(m.frames, 95).toFixed(1)} ms max ${Math.max(...m.frames).toFixed(1)} ms`;
    console.log(line);
    info.annotations.push({ type: "measurement", description: line });
    // Still a working chart: a bar opens its call.
    await page.getByTestId("zoom-reset").click();
    // (Thousands of bars are a few pixels wide; marks may cover a neighbour: dispatch the click.)
    const bar = page.getByTestId("gantt-bar").nth(10);
    const id = await bar.getAttribute("data-trace-id");
    await bar.dispatchEvent("click");
    await expect(page.getByTestId("drawer").getByTestId("trace-detail")).toHaveAttribute("data-trace-id", id!);
    await shot(page, info, `gantt-${calls}`);
  }
  expect(errors).toEqual([]);
});
