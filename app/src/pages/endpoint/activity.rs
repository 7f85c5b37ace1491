//! The Activity tab: agent sessions. A searchable list of sessions beside a Gantt chart of the
//! chosen one: a bar per inference call on a time axis, overlapping calls in separate lanes,
//! time to first token marked, colour by model, errors in red, hover for details, drag (or the
//! buttons) to zoom. A bar opens the same observation drawer as the Traces tab.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};

use super::drawer::TraceDrawer;
use super::endpoint_id;
use super::nav::href_with;
use crate::api::ApiError;
use crate::api::sessions::{get_session, list_sessions};
use crate::components::ui::{BTN_SECONDARY, CARD, INPUT, Money};
use crate::format;
use crate::model::{SessionCall, SessionDetail, SessionSummary, SessionsPage};

#[component]
pub fn ActivityTab() -> impl IntoView {
    let endpoint = endpoint_id();
    let query = use_query_map();
    let search = Memo::new(move |_| query.read().get("sq").unwrap_or_default());
    let before = Memo::new(move |_| query.read().get("before").filter(|b| !b.is_empty()));
    let chosen = Memo::new(move |_| query.read().get("session").unwrap_or_default());
    // Both resources are created here, outside any Suspense, so the server creates each once
    // and the browser finds their data in the same order while hydrating.
    let list = Resource::new(
        move || (endpoint.get(), search.get(), before.get()),
        |(e, s, b)| async move {
            match e {
                Some(e) => list_sessions(e, s, b).await,
                None => Err(ApiError::NotFound),
            }
        },
    );
    let detail = Resource::new(
        move || (endpoint.get(), chosen.get(), search.get()),
        |(e, key, s)| async move {
            match e {
                Some(e) => get_session(e, key, s).await,
                None => Err(ApiError::NotFound),
            }
        },
    );
    let shown = Signal::derive(move || detail.get().and_then(|d| d.ok()).map(|d| d.session.key));
    view! {
        <div class="grid gap-4 lg:grid-cols-[20rem_minmax(0,1fr)]" data-testid="activity">
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading sessions…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(page) => view! { <Sessions page=page shown=shown /> }.into_any(),
                        Err(ApiError::NotFound) => ().into_any(),
                        Err(e) => view! { <p class="text-sm text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading session…"</p> }>
                {move || Suspend::new(async move {
                    match detail.await {
                        Ok(d) => view! { <SessionBody d=d /> }.into_any(),
                        Err(ApiError::NotFound) => view! {
                            <p class=format!("{CARD} p-8 text-center text-sm text-slate-500") data-testid="no-session">
                                "Sessions appear here when agents call /v1/messages or /v1/responses through this endpoint."
                            </p>
                        }
                            .into_any(),
                        Err(e) => view! { <p class="text-sm text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            <TraceDrawer endpoint=endpoint />
        </div>
    }
}

#[component]
fn Sessions(page: SessionsPage, shown: Signal<Option<String>>) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let path = location.pathname.get_untracked();
    let current_search = query.read_untracked().get("sq").unwrap_or_default();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            ev.prevent_default();
            let Some(form) = ev
                .target()
                .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlFormElement>(t).ok())
            else {
                return;
            };
            let text = web_sys::FormData::new_with_form(&form)
                .ok()
                .and_then(|d| d.get("sq").as_string())
                .unwrap_or_default();
            let path = location.pathname.get_untracked();
            leptos_router::hooks::use_navigate()(
                &href_with(
                    &path,
                    &leptos_router::params::ParamsMap::new(),
                    &[("sq", Some(text.trim()))],
                ),
                leptos_router::NavigateOptions {
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    };
    let older = page.next.clone().map(|b| {
        href_with(
            &path,
            &query.read_untracked(),
            &[("before", Some(&b)), ("session", None), ("trace", None)],
        )
    });
    let items = page
        .sessions
        .iter()
        .map(|s| {
            let href = href_with(&path, &query.read_untracked(), &[("session", Some(&s.key)), ("trace", None)]);
            let key = s.key.clone();
            let is_selected = move || shown.get().as_deref() == Some(key.as_str());
            view! {
                <li>
                    <a
                        href=href
                        data-noscroll
                        class="block rounded-lg border border-transparent px-3 py-2 hover:bg-slate-50 aria-[current=true]:border-indigo-200 aria-[current=true]:bg-indigo-50"
                        aria-current=move || is_selected().to_string()
                        data-testid="session-item"
                    >
                        <SessionCard s=s.clone() />
                    </a>
                </li>
            }
        })
        .collect_view();
    let empty = page.sessions.is_empty();
    view! {
        <aside class=format!("{CARD} flex max-h-[48rem] flex-col")>
            <form method="get" class="border-b border-slate-100 p-3" on:submit=on_submit data-testid="session-search">
                <label for="sq" class="sr-only">"Search sessions"</label>
                <input id="sq" name="sq" type="search" class=INPUT placeholder="Search first prompts" value=current_search data-testid="session-search-input" />
            </form>
            <ul class="flex-1 space-y-1 overflow-y-auto p-2" data-testid="session-list">
                {items}
                {empty.then(|| view! { <li class="px-3 py-6 text-center text-sm text-slate-500">"No sessions match."</li> })}
            </ul>
            {older.map(|h| view! { <a href=h class="border-t border-slate-100 px-3 py-2 text-center text-sm text-indigo-600">"Older sessions →"</a> })}
        </aside>
    }
}

#[component]
fn SessionCard(s: SessionSummary) -> impl IntoView {
    let preview = if s.preview.is_empty() {
        "(no prompt text)".to_owned()
    } else {
        s.preview.clone()
    };
    view! {
        <p class="line-clamp-2 break-words text-sm text-slate-800" data-testid="session-preview">{preview}</p>
        <p class="mt-1 flex flex-wrap gap-x-3 text-xs text-slate-500">
            <span data-testid="session-calls">{format::count(s.calls, "call", "calls")}</span>
            <span>{format::duration_ms(s.last_end_at - s.first_at)}</span>
            <span>{format!("{} tok", format::tokens(s.input_tokens + s.output_tokens))}</span>
            <Money nanos=s.cost_nanos />
            {(s.errors > 0).then(|| view! { <span class="font-medium text-red-700">{format::count(s.errors, "error", "errors")}</span> })}
        </p>
        <p class="mt-0.5 text-xs text-slate-400">{format::datetime(s.first_at)}</p>
    }
}

#[component]
fn SessionBody(d: SessionDetail) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let path = location.pathname.get_untracked();
    let s = d.session.clone();
    let related = d
        .related
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let href = href_with(&path, &query.read_untracked(), &[("session", Some(&r.key)), ("trace", None)]);
            let me = r.key == s.key;
            let role = if i == 0 { "main agent" } else { "sub-agent" };
            view! {
                <li>
                    <a href=href data-noscroll class="text-indigo-700 hover:underline aria-[current=true]:font-semibold" aria-current=me.to_string()>
                        {format!("{role}: {} ({})", truncate(&r.preview, 60), format::count(r.calls, "call", "calls"))}
                    </a>
                </li>
            }
        })
        .collect_view();
    let has_related = d.related.len() > 1;
    view! {
        <section class=format!("{CARD} min-w-0 space-y-4 p-5") data-testid="session-view" data-session-key=s.key.clone()>
            <div>
                <h2 class="break-words font-semibold" data-testid="session-title">{if s.preview.is_empty() { "(no prompt text)".to_owned() } else { s.preview.clone() }}</h2>
                <p class="mt-1 flex flex-wrap gap-x-4 text-sm text-slate-500">
                    <span data-testid="session-view-calls">{format::count(s.calls, "call", "calls")}</span>
                    <span>{format!("{} · {}", format::datetime(s.first_at), format::duration_ms(s.last_end_at - s.first_at))}</span>
                    <span>{format!("{} in / {} out", format::int(s.input_tokens), format::int(s.output_tokens))}</span>
                    <Money nanos=s.cost_nanos />
                    {(s.errors > 0).then(|| view! { <span class="text-red-700">{format::count(s.errors, "error", "errors")}</span> })}
                </p>
            </div>
            {has_related.then(|| view! {
                <div class="text-sm">
                    <h3 class="text-xs font-medium uppercase tracking-wide text-slate-500">"Linked sessions"</h3>
                    <ul class="mt-1 space-y-0.5" data-testid="related-sessions">{related}</ul>
                </div>
            })}
            {d.truncated.then(|| view! { <p class="text-xs text-amber-800">{format!("Showing the first {} of {}.", d.calls.len(), format::count(s.calls, "call", "calls"))}</p> })}
            <Gantt calls=d.calls />
        </section>
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// Distinct colours for models, in order of first appearance.
const PALETTE: [&str; 8] = [
    "#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#8b5cf6", "#14b8a6", "#ec4899", "#64748b",
];
const ERROR: &str = "#ef4444";
/// Chart width in viewBox units.
const W: f64 = 1000.0;
const ROW: f64 = 16.0;
const GAP: f64 = 6.0;

struct Bar {
    call: SessionCall,
    lane: usize,
    x: f64,
    w: f64,
    ttft_x: Option<f64>,
    color: &'static str,
}

struct Layout {
    bars: Vec<Bar>,
    lanes: usize,
    /// Start of the first call and the whole span, ms.
    t0: i64,
    span_ms: i64,
    /// Models in order of first appearance, with their colours.
    models: Vec<(String, &'static str)>,
}

/// Places calls in lanes: each goes to the first lane free at its start.
fn layout(calls: &[SessionCall]) -> Layout {
    let t0 = calls.iter().map(|c| c.started_at * 1000).min().unwrap_or(0);
    let t1 = calls
        .iter()
        .map(|c| c.started_at * 1000 + c.latency_us)
        .max()
        .unwrap_or(t0);
    let span = (t1 - t0).max(1) as f64;
    let mut models: Vec<(String, &'static str)> = Vec::new();
    let mut lanes: Vec<i64> = Vec::new();
    let mut bars = Vec::with_capacity(calls.len());
    let mut sorted: Vec<&SessionCall> = calls.iter().collect();
    sorted.sort_by_key(|c| (c.started_at, c.id));
    for c in sorted {
        let start = c.started_at * 1000 - t0;
        let end = start + c.latency_us.max(0);
        let lane = match lanes.iter().position(|&e| e <= start) {
            Some(i) => {
                lanes[i] = end;
                i
            }
            None => {
                lanes.push(end);
                lanes.len() - 1
            }
        };
        let model = c.model.clone().unwrap_or_else(|| "(no model)".into());
        let color = match models.iter().find(|(m, _)| *m == model) {
            Some((_, col)) => *col,
            None => {
                let col = PALETTE[models.len() % PALETTE.len()];
                models.push((model, col));
                col
            }
        };
        bars.push(Bar {
            x: start as f64 / span * W,
            w: (c.latency_us.max(0) as f64 / span * W).max(W * 0.002),
            ttft_x: c.ttft_us.map(|t| (start + t) as f64 / span * W),
            lane,
            color: if c.is_error() { ERROR } else { color },
            call: c.clone(),
        });
    }
    Layout {
        bars,
        lanes: lanes.len().max(1),
        t0: t0 / 1000,
        span_ms: (t1 - t0) / 1000,
        models,
    }
}

#[component]
fn Gantt(calls: Vec<SessionCall>) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let Layout {
        bars,
        lanes,
        t0,
        span_ms,
        models,
    } = layout(&calls);
    let height = lanes as f64 * (ROW + GAP) + GAP;
    // The visible window, in viewBox units.
    let zoom = RwSignal::new((0.0_f64, W));
    let hovered = RwSignal::new(None::<usize>);
    let drag = RwSignal::new(None::<(f64, f64)>);
    let chart = NodeRef::<leptos::html::Div>::new();
    let view_box = move || {
        let (a, b) = zoom.get();
        format!("{a} 0 {} {height}", (b - a).max(0.001))
    };
    let set_zoom = move |a: f64, b: f64| {
        let (a, b) = (a.clamp(0.0, W), b.clamp(0.0, W));
        if b - a >= 1.0 {
            zoom.set((a, b));
        }
    };
    let zoom_by = move |factor: f64| {
        let (a, b) = zoom.get_untracked();
        let mid = (a + b) / 2.0;
        let half = ((b - a) * factor / 2.0).clamp(0.5, W / 2.0);
        let (mut na, mut nb) = (mid - half, mid + half);
        if na < 0.0 {
            nb -= na;
            na = 0.0;
        }
        if nb > W {
            na -= nb - W;
            nb = W;
        }
        set_zoom(na.max(0.0), nb);
    };
    // Pointer position as a viewBox x, for drag-to-zoom.
    let to_units = move |client_x: i32| -> Option<f64> {
        let el = chart.get_untracked()?;
        let rect = el.get_bounding_client_rect();
        if rect.width() <= 0.0 {
            return None;
        }
        let f = ((client_x as f64 - rect.left()) / rect.width()).clamp(0.0, 1.0);
        let (a, b) = zoom.get_untracked();
        Some(a + f * (b - a))
    };
    let ticks = move || {
        let (a, b) = zoom.get();
        (0..=4)
            .map(|i| {
                let u = a + (b - a) * i as f64 / 4.0;
                let ms = (u / W * span_ms as f64) as i64;
                format!("+{}", format::duration_ms(ms))
            })
            .collect::<Vec<_>>()
    };
    let n = bars.len();
    let details: Vec<(SessionCall, String)> = bars
        .iter()
        .map(|b| {
            let href = href_with(
                &location.pathname.get_untracked(),
                &query.read_untracked(),
                &[("trace", Some(&b.call.id.to_string()))],
            );
            (b.call.clone(), href)
        })
        .collect();
    let details = StoredValue::new(details);
    let open = move |i: usize| {
        let _ = i;
        #[cfg(feature = "hydrate")]
        if let Some((_, href)) = details.with_value(|d| d.get(i).cloned()) {
            leptos_router::hooks::use_navigate()(
                &href,
                leptos_router::NavigateOptions {
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    };
    // One handler for all bars (on the chart, below): a session of thousands of calls hydrates
    // as fast as one of ten.
    let rects = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let y = GAP + b.lane as f64 * (ROW + GAP);
            let c = &b.call;
            let tip = tooltip(c);
            let href = details.with_value(|d| d[i].1.clone());
            let is_error = c.is_error();
            let tools = (!c.tool_calls.is_empty()).then(|| {
                // A mark where the call ended: the model asked for tools there, and the agent
                // ran them before its next call.
                let x = b.x + b.w;
                let names = c.tool_calls.join(", ");
                view! {
                    <path
                        d=format!("M{x} {} l4 {} l-4 {} l-4 {} z", y - 1.0, ROW / 2.0 + 1.0, ROW / 2.0 + 1.0, -(ROW / 2.0 + 1.0))
                        fill="#0f172a"
                        vector-effect="non-scaling-stroke"
                        data-testid="gantt-tools"
                        data-tools=names.clone()
                    >
                        <title>{format!("Tools called: {names}")}</title>
                    </path>
                }
            });
            // Rooted in <g> so the macro makes an SVG <a> (a bare <a> would be an HTML one).
            view! {
                <g>
                <a
                    href=href
                    data-i=i.to_string()
                    data-testid="gantt-bar"
                    data-trace-id=c.id.to_string()
                    data-error=is_error.to_string()
                >
                    <title>{tip}</title>
                    <rect
                        x=b.x
                        y=y
                        width=b.w
                        height=ROW
                        fill=b.color
                        stroke=if is_error { "#991b1b" } else { "none" }
                        vector-effect="non-scaling-stroke"
                        class="cursor-pointer hover:opacity-80"
                    />
                    {b.ttft_x.map(|x| view! {
                        <line x1=x x2=x y1=y y2=y + ROW stroke="#0f172a" stroke-width="2" vector-effect="non-scaling-stroke" class="pointer-events-none" />
                    })}
                    {tools}
                </a>
                </g>
            }
        })
        .collect_view();
    // The bar under an event, by its index.
    #[cfg(feature = "hydrate")]
    let bar_at = |ev: &leptos::ev::Event| -> Option<usize> {
        use wasm_bindgen::JsCast;
        let el: web_sys::Element = ev.target()?.dyn_into().ok()?;
        let bar = el.closest("[data-i]").ok()??;
        bar.get_attribute("data-i")?.parse().ok()
    };
    #[cfg(not(feature = "hydrate"))]
    let bar_at = |_: &leptos::ev::Event| -> Option<usize> { None };
    let legend = models
        .into_iter()
        .map(|(m, c)| {
            view! {
                <span class="inline-flex items-center gap-1">
                    <svg viewBox="0 0 10 10" class="h-3 w-3"><rect width="10" height="10" fill=c /></svg>
                    {m}
                </span>
            }
        })
        .collect_view();
    let on_down = move |ev: leptos::ev::MouseEvent| {
        if ev.button() == 0
            && let Some(u) = to_units(ev.client_x())
        {
            drag.set(Some((u, u)));
        }
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        if let Some((a, _)) = drag.get_untracked()
            && let Some(u) = to_units(ev.client_x())
        {
            drag.set(Some((a, u)));
        }
    };
    let on_up = move |_| {
        if let Some((a, b)) = drag.get_untracked() {
            drag.set(None);
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            let (za, zb) = zoom.get_untracked();
            // A real drag, not a click on a bar: at least 1% of the visible width.
            if hi - lo > (zb - za) * 0.01 {
                set_zoom(lo, hi);
            }
        }
    };
    view! {
        <div class="space-y-2" data-testid="gantt" data-bars=n.to_string() data-lanes=lanes.to_string()>
            <div class="flex flex-wrap items-center justify-between gap-2">
                <div class="flex flex-wrap gap-x-4 gap-y-1 text-xs text-slate-600" data-testid="gantt-legend">
                    {legend}
                    <span class="inline-flex items-center gap-1">
                        <svg viewBox="0 0 10 10" class="h-3 w-3"><rect width="10" height="10" fill=ERROR /></svg>
                        "error"
                    </span>
                    <span class="inline-flex items-center gap-1">
                        <svg viewBox="0 0 10 10" class="h-3 w-3"><line x1="5" x2="5" y1="0" y2="10" stroke="#0f172a" stroke-width="2" /></svg>
                        "first token"
                    </span>
                    <span class="inline-flex items-center gap-1">
                        <svg viewBox="0 0 10 10" class="h-3 w-3"><path d="M5 0 L10 5 L5 10 L0 5 z" fill="#0f172a" /></svg>
                        "tools called"
                    </span>
                </div>
                <div class="flex gap-1">
                    <button type="button" class=BTN_SECONDARY on:click=move |_| zoom_by(0.5) aria-label="Zoom in" data-testid="zoom-in">"+"</button>
                    <button type="button" class=BTN_SECONDARY on:click=move |_| zoom_by(2.0) aria-label="Zoom out" data-testid="zoom-out">"−"</button>
                    <button type="button" class=BTN_SECONDARY on:click=move |_| zoom.set((0.0, W)) data-testid="zoom-reset">"Reset"</button>
                </div>
            </div>
            <p class="h-5 truncate text-xs text-slate-700" data-testid="gantt-hover">
                {move || match hovered.get() {
                    Some(i) => details.with_value(|d| d.get(i).map(|(c, _)| tooltip(c))).unwrap_or_default(),
                    None => "Hover a bar for details, click it to open the call; drag across the chart to zoom.".into(),
                }}
            </p>
            <div class="max-h-[36rem] overflow-y-auto rounded-md border border-slate-200">
                <div
                    class="relative select-none"
                    node_ref=chart
                    on:mousedown=on_down
                    on:mousemove=on_move
                    on:mouseup=on_up
                    on:mouseleave=move |_| drag.set(None)
                    on:click=move |ev: leptos::ev::MouseEvent| {
                        if let Some(i) = bar_at(&ev) {
                            ev.prevent_default();
                            open(i);
                        }
                    }
                    on:mouseover=move |ev: leptos::ev::MouseEvent| {
                        let i = bar_at(&ev);
                        if hovered.get_untracked() != i {
                            hovered.set(i);
                        }
                    }
                    on:mouseout=move |_| hovered.set(None)
                >
                    <svg viewBox=view_box preserveAspectRatio="none" class="block w-full" height=height role="img" aria-label="Calls of this session over time" data-testid="gantt-svg">
                        {rects}
                    </svg>
                    <svg viewBox=format!("0 0 {W} {height}") preserveAspectRatio="none" class="pointer-events-none absolute inset-0 h-full w-full">
                        {move || drag.get().map(|(a, b)| {
                            let (za, zb) = zoom.get();
                            let scale = W / (zb - za);
                            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                            view! { <rect x=(lo - za) * scale y="0" width=(hi - lo) * scale height=height class="fill-indigo-500/20 stroke-indigo-500" /> }
                        })}
                    </svg>
                </div>
            </div>
            <div class="flex justify-between text-xs tabular-nums text-slate-500" data-testid="gantt-axis">
                {move || ticks().into_iter().map(|t| view! { <span>{t}</span> }).collect_view()}
            </div>
            <p class="text-xs text-slate-400">{format!("Started {} · {}", format::datetime_seconds(t0), format::count(lanes as i64, "lane", "lanes"))}</p>
        </div>
    }
}

fn tooltip(c: &SessionCall) -> String {
    let mut parts = vec![
        c.model.clone().unwrap_or_else(|| "(no model)".into()),
        format::time_of_day(c.started_at),
        format!("latency {}", format::micros(c.latency_us)),
    ];
    if let Some(t) = c.ttft_us {
        parts.push(format!("TTFT {}", format::micros(t)));
    }
    parts.push(format!(
        "{} in / {} out",
        c.input_tokens
            .map(format::int)
            .unwrap_or_else(|| "–".into()),
        c.output_tokens
            .map(format::int)
            .unwrap_or_else(|| "–".into())
    ));
    if let Some(n) = c.cost_nanos {
        parts.push(format!(
            "{}{}",
            format::usd(n),
            if c.cost_estimated { " (est.)" } else { "" }
        ));
    }
    if !c.tool_calls.is_empty() {
        parts.push(format!("tools: {}", c.tool_calls.join(", ")));
    }
    parts.push(if c.is_error() {
        format!("error {} {}", c.status_code, c.outcome.replace('_', " "))
    } else {
        format!("status {}", c.status_code)
    });
    parts.join(" · ")
}
