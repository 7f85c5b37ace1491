//! The observation drawer: one call in full, opened by the `trace` query parameter (so it is
//! deep-linkable and the back button closes it). Shared by the Traces and Activity tabs.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};
use uuid::Uuid;

use super::nav::href_with;
use crate::api::traces::get_trace;
use crate::components::json::JsonView;
use crate::components::ui::{Badge, CopyButton};
use crate::format;
use crate::model::{CostView, TraceDetail, auth_label};

#[component]
pub fn TraceDrawer(endpoint: Signal<Option<Uuid>>) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let open = Memo::new(move |_| {
        query
            .read()
            .get("trace")
            .and_then(|t| t.parse::<Uuid>().ok())
    });
    let close_href = Signal::derive(move || {
        href_with(&location.pathname.get(), &query.read(), &[("trace", None)])
    });
    let detail = Resource::new(
        move || (endpoint.get(), open.get()),
        |(endpoint, id)| async move {
            match (endpoint, id) {
                (Some(e), Some(id)) => Some(get_trace(e, id).await),
                _ => None,
            }
        },
    );

    // Escape closes the drawer (after hydration; before it, the close link does).
    #[cfg(feature = "hydrate")]
    {
        let navigate = leptos_router::hooks::use_navigate();
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && open.get_untracked().is_some() {
                navigate(
                    &close_href.get_untracked(),
                    leptos_router::NavigateOptions {
                        scroll: false,
                        ..Default::default()
                    },
                );
            }
        });
        on_cleanup(move || handle.remove());
    }

    view! {
        <Show when=move || open.get().is_some()>
            <a href=close_href data-noscroll class="fixed inset-0 z-30 bg-slate-900/20" aria-label="Close trace" tabindex="-1"></a>
            <aside
                class="fixed inset-y-0 right-0 z-40 flex w-full max-w-4xl flex-col border-l border-slate-200 bg-white shadow-2xl"
                role="dialog"
                aria-modal="true"
                aria-label="Trace"
                data-testid="drawer"
            >
                <div class="flex items-center justify-between border-b border-slate-200 px-5 py-3">
                    <h2 class="text-base font-semibold">"Trace"</h2>
                    <a href=close_href data-noscroll class="rounded-md px-2 py-1 text-sm text-slate-500 hover:bg-slate-100 hover:text-slate-800" data-testid="drawer-close">
                        "Close ✕"
                    </a>
                </div>
                <div class="flex-1 overflow-y-auto px-5 py-4">
                    <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading trace…"</p> }>
                        {move || Suspend::new(async move {
                            match detail.await {
                                Some(Ok(d)) => view! { <Detail d=d /> }.into_any(),
                                Some(Err(e)) => view! {
                                    <p class="text-sm text-red-700" role="alert" data-testid="drawer-error">{e.to_string()}</p>
                                }
                                    .into_any(),
                                None => ().into_any(),
                            }
                        })}
                    </Suspense>
                </div>
            </aside>
        </Show>
    }
}

fn status_badge(status: i64, outcome: &str) -> impl IntoView + use<> {
    let (text, tone) = match (status, outcome) {
        (s, "ok") if s < 400 => (format!("{s} OK"), "green"),
        (s, "ok") => (s.to_string(), "red"),
        (0, o) => (o.replace('_', " "), "red"),
        (s, o) => (format!("{s} · {}", o.replace('_', " ")), "red"),
    };
    view! { <Badge text=text tone=tone /> }
}

#[component]
fn Field(label: &'static str, children: Children) -> impl IntoView {
    view! {
        <div>
            <dt class="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</dt>
            <dd class="mt-0.5 break-words text-sm text-slate-800">{children()}</dd>
        </div>
    }
}

#[component]
fn Detail(d: TraceDetail) -> impl IntoView {
    let s = d.summary.clone();
    let tokens = |v: Option<i64>| v.map(format::int).unwrap_or_else(|| "–".into());
    let assembled = RwSignal::new(true);
    let has_assembled = d.response_assembled.is_some();
    let response_raw = d.response_body.clone().unwrap_or_default();
    let response_asm = d.response_assembled.clone().unwrap_or_default();
    let request = d.request_body.clone();
    view! {
        <div class="space-y-6" data-testid="trace-detail" data-trace-id=s.id.to_string()>
            <div class="flex flex-wrap items-center gap-2">
                <span class="text-lg font-semibold" data-testid="drawer-model">{s.model.clone().unwrap_or_else(|| "(no model)".into())}</span>
                {status_badge(s.status_code, &s.outcome)}
                <Badge text=auth_label(&s.auth_mode) tone="indigo" />
                {s.is_stream.then(|| view! { <Badge text="stream" /> })}
                <span class="text-sm text-slate-500">{format::datetime(s.started_at)}</span>
            </div>
            {s.error.clone().map(|e| view! {
                <p class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800" data-testid="drawer-error-text">{e}</p>
            })}
            <dl class="grid grid-cols-2 gap-4 sm:grid-cols-4">
                <Field label="Request">{format!("{} {}", s.method, s.path)}</Field>
                <Field label="Provider">{s.provider.clone().unwrap_or_else(|| "–".into())}</Field>
                <Field label="Virtual key">{s.key_name.clone().or(s.key_id.map(|k| k.to_string())).or(s.key_hint.clone().map(|h| format!("{h} (refused)"))).unwrap_or_else(|| "–".into())}</Field>
                <Field label="Trace id"><span class="font-mono text-xs">{s.id.to_string()}</span></Field>
                <Field label="Time to first token">
                    <span data-testid="drawer-ttft">{s.ttft_us.map(format::micros).unwrap_or_else(|| "–".into())}</span>
                </Field>
                <Field label="Latency"><span data-testid="drawer-latency">{format::micros(s.latency_us)}</span></Field>
                <Field label="Request size">{format!("{} bytes", format::int(d.request_bytes))}</Field>
                <Field label="Response size">{format!("{} bytes", format::int(d.response_bytes))}</Field>
            </dl>
            <Timing ttft=s.ttft_us latency=s.latency_us />
            <section>
                <h3 class="mb-2 text-sm font-semibold text-slate-700">
                    "Tokens"
                    {(d.usage_source == "estimated").then(|| view! { <span class="ml-2 text-xs font-normal text-amber-700">"(estimated: the provider reported none)"</span> })}
                </h3>
                <dl class="grid grid-cols-5 gap-4" data-testid="drawer-tokens">
                    <Field label="Input">{tokens(s.input_tokens)}</Field>
                    <Field label="Output">{tokens(s.output_tokens)}</Field>
                    <Field label="Cache read">{tokens(s.cache_read_tokens)}</Field>
                    <Field label="Cache write">{tokens(d.cache_write_tokens)}</Field>
                    <Field label="Reasoning">{tokens(d.reasoning_tokens)}</Field>
                </dl>
            </section>
            <CostTable cost=d.cost.clone() detail=d.clone() />
            <section class="space-y-2">
                <div class="flex items-center justify-between">
                    <h3 class="text-sm font-semibold text-slate-700">"Request"</h3>
                    {request.clone().map(|r| view! { <CopyButton text=r label="Copy request" test_id="copy-request" /> })}
                </div>
                <Clipping truncated=d.request_truncated clipped=d.request_clipped bytes=d.request_bytes />
                <div class="max-h-[32rem] overflow-y-auto rounded-md border border-slate-200 bg-slate-50 p-3">
                    {match request {
                        Some(r) => view! { <JsonView text=r test_id="request-json" /> }.into_any(),
                        None => view! { <p class="text-sm text-slate-500">"No request body was recorded."</p> }.into_any(),
                    }}
                </div>
            </section>
            <section class="space-y-2">
                <div class="flex flex-wrap items-center justify-between gap-2">
                    <div class="flex items-center gap-3">
                        <h3 class="text-sm font-semibold text-slate-700">"Response"</h3>
                        <Show when=move || has_assembled>
                            <div class="inline-flex rounded-md border border-slate-300 text-xs" role="group" aria-label="Response view">
                                <button
                                    type="button"
                                    class="rounded-l-md px-2 py-1 aria-pressed:bg-indigo-600 aria-pressed:text-white"
                                    aria-pressed=move || assembled.get().to_string()
                                    on:click=move |_| assembled.set(true)
                                    data-testid="show-assembled"
                                >
                                    "Reassembled"
                                </button>
                                <button
                                    type="button"
                                    class="rounded-r-md px-2 py-1 aria-pressed:bg-indigo-600 aria-pressed:text-white"
                                    aria-pressed=move || (!assembled.get()).to_string()
                                    on:click=move |_| assembled.set(false)
                                    data-testid="show-raw"
                                >
                                    "Raw events"
                                </button>
                            </div>
                        </Show>
                    </div>
                    {
                        let (raw, asm) = (response_raw.clone(), response_asm.clone());
                        move || {
                            let text = if has_assembled && assembled.get() { asm.clone() } else { raw.clone() };
                            (!text.is_empty()).then(|| view! { <CopyButton text=text label="Copy response" test_id="copy-response" /> })
                        }
                    }
                </div>
                <Clipping truncated=d.response_truncated clipped=d.response_clipped bytes=d.response_bytes />
                <div class="max-h-[32rem] overflow-y-auto rounded-md border border-slate-200 bg-slate-50 p-3" data-testid="response-view">
                    {
                        let (raw, asm) = (response_raw.clone(), response_asm.clone());
                        move || {
                            if has_assembled && assembled.get() {
                                view! { <JsonView text=asm.clone() test_id="response-json" /> }.into_any()
                            } else if raw.is_empty() {
                                view! { <p class="text-sm text-slate-500">"No response body was recorded."</p> }.into_any()
                            } else {
                                view! { <JsonView text=raw.clone() test_id="response-raw" /> }.into_any()
                            }
                        }
                    }
                </div>
            </section>
            {(!d.attempts.is_empty()).then(|| view! { <Attempts attempts=d.attempts.clone() /> })}
            <section class="space-y-2">
                <h3 class="text-sm font-semibold text-slate-700">"Headers"</h3>
                <p class="text-xs text-slate-500">"Credentials are replaced with <redacted> before storage."</p>
                <details class="rounded-md border border-slate-200 bg-slate-50 p-3">
                    <summary class="cursor-pointer text-sm">"Request headers"</summary>
                    <JsonView text=d.request_headers.clone() test_id="request-headers" />
                </details>
                <details class="rounded-md border border-slate-200 bg-slate-50 p-3">
                    <summary class="cursor-pointer text-sm">"Response headers"</summary>
                    <JsonView text=d.response_headers.clone() />
                </details>
            </section>
            {(d.session_parent.is_some() || s.session_key.is_some() || d.response_id.is_some()).then(|| view! {
                <dl class="grid grid-cols-1 gap-3 text-xs sm:grid-cols-3">
                    <Field label="Session">{s.session_key.clone().unwrap_or_else(|| "–".into())}</Field>
                    <Field label="Parent session">{d.session_parent.clone().unwrap_or_else(|| "–".into())}</Field>
                    <Field label="Response id">{d.response_id.clone().unwrap_or_else(|| "–".into())}</Field>
                </dl>
            })}
        </div>
    }
}

/// Every try at the provider: retries on the same or another credential, translations.
#[component]
fn Attempts(attempts: Vec<crate::model::AttemptView>) -> impl IntoView {
    let rows = attempts
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let status = if a.status == 0 { "no answer".to_owned() } else { a.status.to_string() };
            let ok = (200..400).contains(&a.status);
            let target = match &a.model {
                Some(m) => format!("{} · {m}", a.provider),
                None => a.provider.clone(),
            };
            view! {
                <tr class="border-t border-slate-200" data-testid="attempt">
                    <td class="py-1 pr-3 text-slate-500">{i + 1}</td>
                    <td class="py-1 pr-3">
                        {target}
                        {a.fallback.then(|| view! { <span class="ml-1 rounded bg-amber-100 px-1 text-amber-800">"fallback"</span> })}
                        {a.translated.clone().map(|t| view! { <span class="ml-1 rounded bg-slate-200 px-1 text-slate-700">{t}</span> })}
                    </td>
                    <td class="py-1 pr-3">{a.credential.clone().unwrap_or_else(|| "–".into())}</td>
                    <td class=if ok { "py-1 pr-3 text-emerald-700" } else { "py-1 pr-3 text-red-700" }>{status}</td>
                    <td class="py-1 pr-3">{format!("{} ms", a.latency_ms)}</td>
                    <td class="py-1 break-words text-slate-600">{a.error.clone().unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="space-y-2" data-testid="attempts">
            <h3 class="text-sm font-semibold text-slate-700">"Attempts"</h3>
            <table class="w-full text-left text-xs">
                <thead class="text-slate-500">
                    <tr><th class="pr-3">"#"</th><th class="pr-3">"Target"</th><th class="pr-3">"Credential"</th><th class="pr-3">"Status"</th><th class="pr-3">"Latency"</th><th>"Error"</th></tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

/// Waiting for the first token, then streaming it: a two-part bar.
#[component]
fn Timing(ttft: Option<i64>, latency: i64) -> impl IntoView {
    let total = latency.max(1) as f64;
    let first = ttft.map(|t| (t as f64 / total * 1000.0).clamp(0.0, 1000.0));
    view! {
        <svg viewBox="0 0 1000 12" preserveAspectRatio="none" class="h-3 w-full" role="img" aria-label="Time to first token and total latency">
            <rect x="0" y="0" width="1000" height="12" rx="3" class="fill-indigo-200" />
            {first.map(|w| view! { <rect x="0" y="0" width=w height="12" rx="3" class="fill-indigo-500" /> })}
        </svg>
        <div class="mt-1 flex justify-between text-xs text-slate-500">
            <span>{ttft.map(|t| format!("waiting {}", format::micros(t))).unwrap_or_else(|| "no first-token time".into())}</span>
            <span>{format!("total {}", format::micros(latency))}</span>
        </div>
    }
}

#[component]
fn Clipping(truncated: bool, clipped: bool, bytes: i64) -> impl IntoView {
    let note = if truncated {
        Some(format!(
            "The body was {} bytes; the recorder kept only its first part (ANTIX_MAX_STORED_BODY_BYTES).",
            format::int(bytes)
        ))
    } else if clipped {
        Some(format!(
            "Showing the first 2 MiB of {} bytes.",
            format::int(bytes)
        ))
    } else {
        None
    };
    note.map(|n| view! { <p class="text-xs text-amber-800">{n}</p> })
}

#[component]
fn CostTable(cost: Option<CostView>, detail: TraceDetail) -> impl IntoView {
    let s = detail.summary.clone();
    let est = s.cost_estimated;
    let Some(c) = cost else {
        let why = match s.cost_nanos {
            Some(0) => "This call is not billed by tokens (a listing or token count): $0.",
            _ if s.model.is_none() => "No model, so no price.",
            _ => {
                "No price is known for this model, or the provider reported no usage: no cost is recorded rather than a guess."
            }
        };
        return view! {
            <section>
                <h3 class="mb-2 text-sm font-semibold text-slate-700">"Cost"</h3>
                <p class="text-sm text-slate-500" data-testid="drawer-cost-none">{why}</p>
            </section>
        }
        .into_any();
    };
    let row = |part: &'static str, tokens: Option<i64>, price: Option<u64>, nanos: i64| {
        view! {
            <tr>
                <td class="py-1 pr-4 text-slate-600">{part}</td>
                <td class="py-1 pr-4 text-right tabular-nums">{tokens.map(format::int).unwrap_or_else(|| "–".into())}</td>
                <td class="py-1 pr-4 text-right tabular-nums text-slate-500">{price.map(format::per_mtok).unwrap_or_else(|| "–".into())}</td>
                <td class="py-1 text-right tabular-nums">{format::usd(nanos)}</td>
            </tr>
        }
    };
    let cache_write_price = c.price_cache_write_5m.or(c.price_cache_write_1h);
    // Reasoning tokens are part of the output; some models price them apart.
    let reasoning_apart = c.price_reasoning.is_some_and(|rp| rp != c.price_output);
    let reasoning = detail.reasoning_tokens.unwrap_or(0);
    view! {
        <section data-testid="drawer-cost">
            <h3 class="mb-2 text-sm font-semibold text-slate-700">
                "Cost"
                {est.then(|| view! { <span class="ml-2 text-xs font-normal text-amber-700">"(est.) passthrough: billed by the provider to the caller's own key"</span> })}
            </h3>
            <table class="w-full text-sm">
                <thead>
                    <tr class="text-xs uppercase tracking-wide text-slate-500">
                        <th class="py-1 pr-4 text-left font-medium">"Part"</th>
                        <th class="py-1 pr-4 text-right font-medium">"Tokens"</th>
                        <th class="py-1 pr-4 text-right font-medium">"Price"</th>
                        <th class="py-1 text-right font-medium">"Cost"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {row("Input", s.input_tokens.map(|i| i - s.cache_read_tokens.unwrap_or(0) - detail.cache_write_tokens.unwrap_or(0)), Some(c.price_input), c.input_nanos)}
                    {row("Output", s.output_tokens.map(|o| if reasoning_apart { o - reasoning } else { o }), Some(c.price_output), c.output_nanos)}
                    {row("Cache read", s.cache_read_tokens, c.price_cache_read, c.cache_read_nanos)}
                    {row("Cache write", detail.cache_write_tokens, cache_write_price, c.cache_write_nanos)}
                    {if reasoning_apart {
                        row("Reasoning", detail.reasoning_tokens, c.price_reasoning, c.reasoning_nanos)
                    } else {
                        row("Reasoning (billed as output)", detail.reasoning_tokens, None, 0)
                    }}
                    <tr class="font-semibold">
                        <td class="py-1 pr-4">"Total"</td>
                        <td></td>
                        <td></td>
                        <td class="py-1 text-right tabular-nums" data-testid="drawer-cost-total">{format::usd(c.total_nanos)}</td>
                    </tr>
                </tbody>
            </table>
            <p class="mt-1 text-xs text-slate-500">
                {format!("Priced as {} from price catalog {}", c.priced_as, c.catalog_version)}
                {c.tier_above.map(|t| format!(" (long-context prices, above {} input tokens)", format::int(t as i64)))}
            </p>
        </section>
    }
    .into_any()
}
