//! The Traces tab: a filter strip, the table of calls (newest first, cursor pages) and the
//! observation drawer. Filters, page and open trace all live in the URL query.

use leptos::prelude::*;
use leptos_router::hooks::{use_location, use_query_map};

use super::drawer::TraceDrawer;
use super::endpoint_id;
use super::nav::href_with;
use crate::api::ApiError;
use crate::api::traces::list_traces;
use crate::components::ui::{BTN_PRIMARY, BTN_SECONDARY, CARD, INPUT, Money, TD, TH};
use crate::format;
use crate::model::{Choice, TraceQuery, TraceSummary, TracesPage, auth_label};

#[component]
pub fn TracesTab() -> impl IntoView {
    let endpoint = endpoint_id();
    let query = use_query_map();
    let tq = Memo::new(move |_| {
        let q = query.read();
        let mut t = TraceQuery::default();
        for f in TraceQuery::FIELDS {
            t.set(f, q.get(f).unwrap_or_default());
        }
        t
    });
    // Keyed on the filters and cursor only: opening a trace does not reload the table.
    let page = Resource::new(
        move || (endpoint.get(), tq.get()),
        |(endpoint, q)| async move {
            match endpoint {
                Some(e) => list_traces(e, q).await,
                None => Err(ApiError::NotFound),
            }
        },
    );
    view! {
        <div class="space-y-4" data-testid="traces">
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading traces…"</p> }>
                {move || Suspend::new(async move {
                    let result = page.await;
                    let q = tq.get_untracked();
                    match result {
                        Ok(p) => view! {
                            <FilterStrip q=q.clone() models=p.models.clone() keys=p.keys.clone() error=None />
                            <Table page=p q=q />
                        }
                            .into_any(),
                        Err(ApiError::NotFound) => ().into_any(),
                        Err(err @ ApiError::Invalid(_)) => view! {
                            <FilterStrip q=q models=vec![] keys=vec![] error=Some(err) />
                        }
                            .into_any(),
                        Err(err) => view! {
                            <FilterStrip q=q models=vec![] keys=vec![] error=None />
                            <p class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-700" role="alert" data-testid="traces-error">
                                {err.to_string()}
                            </p>
                        }
                            .into_any(),
                    }
                })}
            </Transition>
            <TraceDrawer endpoint=endpoint />
        </div>
    }
}

fn options(
    current: &str,
    any: &'static str,
    choices: Vec<(String, String)>,
) -> impl IntoView + use<> {
    let mut choices = choices;
    // A value from a shared link that is not in the list any more still shows as chosen.
    if !current.is_empty() && !choices.iter().any(|(v, _)| v == current) {
        choices.push((current.to_owned(), current.to_owned()));
    }
    let current = current.to_owned();
    view! {
        <option value="" selected=current.is_empty()>{any}</option>
        {choices
            .into_iter()
            .map(|(v, l)| {
                let selected = v == current;
                view! { <option value=v selected=selected>{l}</option> }
            })
            .collect_view()}
    }
}

#[component]
fn FilterStrip(
    q: TraceQuery,
    models: Vec<String>,
    keys: Vec<Choice>,
    error: Option<ApiError>,
) -> impl IntoView {
    let location = use_location();
    let form = NodeRef::<leptos::html::Form>::new();
    let custom = RwSignal::new(q.range == "custom");
    let field_error = {
        let error = error.clone();
        move |f: &str| error.as_ref().and_then(|e| e.field(f))
    };
    let active = q.active();
    let pair = |v: &str, l: &str| (v.to_owned(), l.to_owned());

    // After hydration, applying builds a clean URL (no empty parameters) and navigates on the
    // client; before it, the form is a plain GET form and the server renders the result.
    let apply = move || {
        // The filters the strip submits (the cursor and the open trace are not among them).
        #[cfg(feature = "hydrate")]
        const FILTERS: [&str; 8] = ["range", "from", "to", "auth", "model", "key", "status", "q"];
        #[cfg(feature = "hydrate")]
        if let Some(f) = form.get_untracked()
            && let Ok(data) = web_sys::FormData::new_with_form(&f)
        {
            let range = data.get("range").as_string().unwrap_or_default();
            let pairs = FILTERS
                .iter()
                .filter(|k| range == "custom" || (**k != "from" && **k != "to"))
                .filter_map(|k| {
                    let v = data.get(k).as_string().unwrap_or_default();
                    (!v.trim().is_empty()).then_some((*k, v))
                });
            let path = location.pathname.get_untracked();
            leptos_router::hooks::use_navigate()(
                &format!("{path}{}", super::nav::query_string(pairs)),
                leptos_router::NavigateOptions {
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    };
    let navigate_apply = apply;
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        navigate_apply();
    };
    let on_change = move |ev: leptos::ev::Event| {
        let name = event_target::<web_sys::HtmlInputElement>(&ev).name();
        if name == "range" {
            custom.set(event_target_value(&ev) == "custom");
        }
        // Selects apply at once; text fields on Enter or Apply.
        if matches!(name.as_str(), "range" | "auth" | "model" | "key" | "status")
            && event_target_value(&ev) != "custom"
        {
            apply();
        }
    };
    let label = "block text-xs font-medium text-slate-600";
    let err = move |f: &'static str| {
        field_error(f).map(|m| view! { <p class="mt-1 text-xs text-red-700" role="alert" data-testid=format!("error-{f}")>{m}</p> })
    };
    let (from, to) = (q.from.clone(), q.to.clone());
    // The view as it is filtered now, as a file (the cursor is not a filter: the whole view).
    let export = {
        let endpoint = super::endpoint_id();
        let q = q.clone();
        move |format: &'static str| {
            let filters = TraceQuery::FIELDS
                .iter()
                .filter(|f| **f != "after")
                .map(|f| (*f, q.get(f).to_owned()))
                .filter(|(_, v)| !v.trim().is_empty());
            let query = super::nav::query_string(
                std::iter::once(("format", format.to_owned())).chain(filters),
            );
            endpoint
                .get()
                .map(|e| format!("/endpoints/{e}/export{query}"))
                .unwrap_or_default()
        }
    };
    let export_csv = export.clone();
    view! {
        <details class=format!("{CARD} group") open=true data-testid="filter-strip">
            <summary class="flex cursor-pointer list-none items-center justify-between px-4 py-3 text-sm font-medium text-slate-700">
                <span>
                    "Filters"
                    {(active > 0).then(|| view! { <span class="ml-2 rounded-full bg-indigo-100 px-2 py-0.5 text-xs text-indigo-700" data-testid="active-filters">{format!("{active} active")}</span> })}
                </span>
                <span class="text-xs text-slate-400 group-open:hidden">"show"</span>
                <span class="hidden text-xs text-slate-400 group-open:inline">"hide"</span>
            </summary>
            <form
                method="get"
                action=move || location.pathname.get()
                node_ref=form
                on:submit=on_submit
                on:change=on_change
                class="grid grid-cols-2 gap-3 border-t border-slate-100 px-4 py-3 md:grid-cols-4 lg:grid-cols-7"
                data-testid="filters"
            >
                <div class="col-span-2 md:col-span-4 lg:col-span-2">
                    <label class=label for="f-q">"Search request and response bodies"</label>
                    <input id="f-q" name="q" type="search" class=INPUT value=q.q.clone() placeholder="text in a prompt or answer (3+ characters)" maxlength="1000" data-testid="filter-q" />
                    {err("q")}
                </div>
                <div>
                    <label class=label for="f-range">"Time range"</label>
                    <select id="f-range" name="range" class=INPUT data-testid="filter-range">
                        {options(&q.range, "All time", vec![pair("1h", "Last hour"), pair("24h", "Last 24 hours"), pair("7d", "Last 7 days"), pair("30d", "Last 30 days"), pair("custom", "Custom…")])}
                    </select>
                    {err("range")}
                </div>
                <div>
                    <label class=label for="f-auth">"Auth mode"</label>
                    <select id="f-auth" name="auth" class=INPUT data-testid="filter-auth">
                        {options(&q.auth, "Any", vec![pair("virtual_key", "Virtual Key"), pair("byok", "BYOK"), pair("oauth", "OAuth")])}
                    </select>
                    {err("auth")}
                </div>
                <div>
                    <label class=label for="f-model">"Model"</label>
                    <select id="f-model" name="model" class=INPUT data-testid="filter-model">
                        {options(&q.model, "Any", models.into_iter().map(|m| (m.clone(), m)).collect())}
                    </select>
                </div>
                <div>
                    <label class=label for="f-key">"Virtual key"</label>
                    <select id="f-key" name="key" class=INPUT data-testid="filter-key">
                        {options(&q.key, "Any", keys.into_iter().map(|k| (k.value, k.label)).chain([pair("unknown", "Keys that did not check out")]).collect())}
                    </select>
                    {err("key")}
                </div>
                <div>
                    <label class=label for="f-status">"Status"</label>
                    <select id="f-status" name="status" class=INPUT data-testid="filter-status">
                        {options(&q.status, "Any", vec![pair("ok", "OK"), pair("error", "Error"), pair("retried", "Retried / fallback")])}
                    </select>
                    {err("status")}
                </div>
                <Show when=move || custom.get()>
                    <div>
                        <label class=label for="f-from">"From (UTC)"</label>
                        <input id="f-from" name="from" type="datetime-local" class=INPUT value=from.clone() data-testid="filter-from" />
                        {err("from")}
                    </div>
                    <div>
                        <label class=label for="f-to">"To (UTC)"</label>
                        <input id="f-to" name="to" type="datetime-local" class=INPUT value=to.clone() data-testid="filter-to" />
                        {err("to")}
                    </div>
                </Show>
                <div class="col-span-2 flex items-end gap-2 md:col-span-4 lg:col-span-7">
                    <button type="submit" class=BTN_PRIMARY data-testid="apply-filters">"Apply"</button>
                    <a href=move || location.pathname.get() class=BTN_SECONDARY data-testid="clear-filters">"Clear"</a>
                    <span class="ml-auto flex items-center gap-2 text-xs text-slate-500">
                        "Export this view:"
                        <a href=move || export_csv("csv") rel="external" download class=BTN_SECONDARY data-testid="export-csv">"CSV"</a>
                        <a href=move || export("jsonl") rel="external" download class=BTN_SECONDARY data-testid="export-jsonl">"JSON Lines"</a>
                    </span>
                </div>
            </form>
        </details>
    }
}

#[component]
fn Table(page: TracesPage, q: TraceQuery) -> impl IntoView {
    let query = use_query_map();
    let location = use_location();
    let open = Memo::new(move |_| query.read().get("trace"));
    let searching = !q.q.trim().is_empty();
    let newest = (!q.after.is_empty()).then(|| {
        href_with(
            &location.pathname.get_untracked(),
            &query.read_untracked(),
            &[("after", None), ("trace", None)],
        )
    });
    let older = page.next.clone().map(|c| {
        href_with(
            &location.pathname.get_untracked(),
            &query.read_untracked(),
            &[("after", Some(&c)), ("trace", None)],
        )
    });
    if page.rows.is_empty() {
        let text = if q.active() > 0 || !q.after.is_empty() {
            "No traces match these filters."
        } else {
            "No traces yet. Send a request through one of the base URLs above and it shows up here."
        };
        return view! { <p class=format!("{CARD} px-4 py-8 text-center text-sm text-slate-500") data-testid="traces-empty">{text}</p> }.into_any();
    }
    let rows = page
        .rows
        .into_iter()
        .map(|r| {
            let id = r.id.to_string();
            let href = href_with(
                &location.pathname.get_untracked(),
                &query.read_untracked(),
                &[("trace", Some(&id))],
            );
            view! { <Row r=r href=href open=open searching=searching /> }
        })
        .collect_view();
    view! {
        <div class=format!("{CARD} overflow-x-auto")>
            <table class="min-w-full divide-y divide-slate-200" data-testid="traces-table">
                <thead class="bg-slate-50">
                    <tr>
                        <th class=TH>"Time (UTC)"</th>
                        <th class=TH>"Auth"</th>
                        <th class=TH>"Model"</th>
                        <th class=format!("{TH} text-right")>"Input"</th>
                        <th class=format!("{TH} text-right")>"Output"</th>
                        <th class=format!("{TH} text-right")>"Cost"</th>
                        <th class=format!("{TH} text-right")>"Latency"</th>
                        <th class=format!("{TH} text-right")>"TTFT"</th>
                        <th class=TH>"Status"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">{rows}</tbody>
            </table>
        </div>
        <nav class="flex items-center justify-between text-sm" aria-label="Pages">
            <span>
                {newest.map(|h| view! { <a href=h class="font-medium text-indigo-600 hover:text-indigo-800" data-testid="newest-page">"← Newest"</a> })}
            </span>
            <span>
                {older.map(|h| view! { <a href=h class="font-medium text-indigo-600 hover:text-indigo-800" data-testid="older-page">"Older →"</a> })}
            </span>
        </nav>
    }
    .into_any()
}

#[component]
fn Row(
    r: TraceSummary,
    href: String,
    open: Memo<Option<String>>,
    searching: bool,
) -> impl IntoView {
    let id = r.id.to_string();
    let is_open = {
        let id = id.clone();
        move || open.get().as_deref() == Some(id.as_str())
    };
    let status = if r.is_error() {
        let text = if r.status_code > 0 {
            r.status_code.to_string()
        } else {
            r.outcome.replace('_', " ")
        };
        view! { <span class="font-medium text-red-700" data-testid="status">{text}</span> }
            .into_any()
    } else {
        view! { <span class="text-emerald-700" data-testid="status">{r.status_code.to_string()}</span> }.into_any()
    };
    let tokens = |v: Option<i64>| v.map(format::int).unwrap_or_else(|| "–".into());
    let click_href = href.clone();
    let on_click = move |ev: leptos::ev::MouseEvent| {
        // The time cell is a real link; clicks elsewhere on the row follow it too.
        let _ = &ev;
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let on_link = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|el| el.closest("a").ok().flatten())
                .is_some();
            if !on_link {
                leptos_router::hooks::use_navigate()(
                    &click_href,
                    leptos_router::NavigateOptions {
                        scroll: false,
                        ..Default::default()
                    },
                );
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &click_href;
    };
    let snippet = r.snippet.clone();
    view! {
        <tr
            class="cursor-pointer hover:bg-slate-50 aria-selected:bg-indigo-50"
            aria-selected=move || is_open().to_string()
            on:click=on_click
            data-testid="trace-row"
            data-trace-id=id.clone()
        >
            <td class=format!("{TD} whitespace-nowrap")>
                <a href=href data-noscroll class="font-mono text-xs text-indigo-700 hover:underline" data-testid="trace-link">
                    {format::datetime_seconds(r.started_at)}
                </a>
                {searching.then(|| snippet.map(|s| view! {
                    <p class="mt-1 max-w-xl whitespace-normal break-words font-mono text-xs text-slate-500" data-testid="snippet">
                        {s.before}<mark class="rounded bg-amber-200 px-0.5 text-slate-900">{s.hit}</mark>{s.after}
                    </p>
                }))}
            </td>
            <td class=TD>
                {auth_label(&r.auth_mode)}
                {r.key_hint.clone().filter(|_| r.key_id.is_none()).map(|h| view! {
                    <span class="block font-mono text-xs text-red-700" data-testid="key-hint">{format!("refused {h}")}</span>
                })}
            </td>
            <td class=format!("{TD} whitespace-nowrap") data-testid="model">{r.model.clone().unwrap_or_else(|| "–".into())}</td>
            <td class=format!("{TD} text-right tabular-nums")>{tokens(r.input_tokens)}</td>
            <td class=format!("{TD} text-right tabular-nums")>{tokens(r.output_tokens)}</td>
            <td class=format!("{TD} text-right")>
                {match r.cost_nanos {
                    Some(c) => view! { <Money nanos=c estimated=r.cost_estimated /> }.into_any(),
                    None => view! { <span class="text-slate-400" title="No price known for this model">"–"</span> }.into_any(),
                }}
            </td>
            <td class=format!("{TD} text-right tabular-nums")>{format::micros(r.latency_us)}</td>
            <td class=format!("{TD} text-right tabular-nums")>{r.ttft_us.map(format::micros).unwrap_or_else(|| "–".into())}</td>
            <td class=TD>{status}</td>
        </tr>
    }
}
