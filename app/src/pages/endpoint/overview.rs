//! The Overview tab: the last 30 days of an endpoint, as totals, a daily chart and breakdowns by
//! model, virtual key and auth mode (each row links to the matching traces).

use leptos::prelude::*;

use super::endpoint_id;
use crate::api::ApiError;
use crate::api::traces::endpoint_overview;
use crate::components::ui::{CARD, Money, TD, TH};
use crate::format;
use crate::model::{BreakdownRow, DayTotals, Overview, Totals};

#[component]
pub fn OverviewTab() -> impl IntoView {
    let id = endpoint_id();
    let data = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => endpoint_overview(id).await.map(|o| (id, o)),
                None => Err(ApiError::NotFound),
            }
        },
    );
    view! {
        <div data-testid="overview" class="space-y-6">
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((id, o)) => view! { <Body o=o base=format!("/endpoints/{id}/traces") /> }.into_any(),
                        // The layout above says so.
                        Err(ApiError::NotFound) => ().into_any(),
                        Err(e) => view! { <p class="text-sm text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn Card(label: &'static str, test_id: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class=format!("{CARD} p-5") data-testid=test_id>
            <h2 class="text-sm font-medium text-slate-500">{label}</h2>
            <div class="mt-2">{children()}</div>
        </section>
    }
}

#[component]
fn Body(o: Overview, base: String) -> impl IntoView {
    let t = o.totals;
    let passthrough = t.cost_estimated_nanos > 0
        || o.by_auth
            .iter()
            .any(|b| b.value == "byok" || b.value == "oauth");
    let days = o.days.clone();
    let retried_href = format!("{base}?status=retried");
    view! {
        <p class="text-sm text-slate-500">{format!("Last 30 days, {} to today (UTC)", format::date(o.since))}</p>
        <div class="grid gap-4 md:grid-cols-3">
            <Card label="Requests" test_id="card-requests">
                <p class="text-3xl font-semibold tabular-nums" data-testid="total-requests">{format::int(t.requests)}</p>
                <p class="mt-1 text-sm text-slate-500">
                    {if t.errors > 0 { format::count(t.errors, "error", "errors") } else { "no errors".into() }}
                    {(t.retried > 0 || t.fell_back > 0).then(|| view! {
                        " · "
                        <a class="underline decoration-dotted" href=retried_href data-testid="total-retried">
                            {format!("{} retried, {} fell back", format::int(t.retried), format::int(t.fell_back))}
                        </a>
                    })}
                </p>
            </Card>
            <Card label="Tokens" test_id="card-tokens">
                <p class="text-3xl font-semibold tabular-nums" data-testid="total-tokens">{format::tokens(t.input_tokens + t.output_tokens)}</p>
                <p class="mt-1 text-sm text-slate-500">
                    <span data-testid="total-input">{format!("{} prompt", format::int(t.input_tokens))}</span>
                    {(t.cache_read_tokens > 0).then(|| view! { <span data-testid="total-cached">{format!(" ({} cached)", format::int(t.cache_read_tokens))}</span> })}
                    " · "
                    <span data-testid="total-output">{format!("{} completion", format::int(t.output_tokens))}</span>
                </p>
            </Card>
            <Card label="Cost (Antix billed)" test_id="card-cost">
                <p class="text-3xl font-semibold tabular-nums" data-testid="total-billed"><Money nanos=t.cost_billed_nanos /></p>
                <p class="mt-1 text-xs text-slate-500">"Virtual-key traffic, charged to the organization's credentials."</p>
                {passthrough.then(|| view! {
                    <p class="mt-2 text-sm text-slate-700" data-testid="total-estimated">
                        "Passthrough: "
                        <Money nanos=t.cost_estimated_nanos estimated=true />
                        <span class="block text-xs text-slate-500">"BYOK and OAuth calls, billed by the provider to the caller."</span>
                    </p>
                })}
                {(t.unpriced > 0).then(|| view! {
                    <p class="mt-1 text-xs text-amber-800">{format!("{} no known price and {} not counted.", if t.unpriced == 1 { "1 call had".to_owned() } else { format!("{} calls had", format::int(t.unpriced)) }, if t.unpriced == 1 { "is" } else { "are" })}</p>
                })}
            </Card>
        </div>
        <div class="grid gap-4 lg:grid-cols-2">
            <Chart title="Requests per day" days=days.clone() value=|t: &Totals| t.requests label=|v| format::int(v) test_id="chart-requests" />
            <Chart title="Cost per day" days=days value=|t: &Totals| t.cost_billed_nanos + t.cost_estimated_nanos label=format::usd test_id="chart-cost" />
        </div>
        <Breakdown title="By model" rows=o.by_model base=base.clone() param="model" test_id="by-model" />
        <Breakdown title="By virtual key" rows=o.by_key base=base.clone() param="key" test_id="by-key" />
        <Breakdown title="By auth mode" rows=o.by_auth base=base param="auth" test_id="by-auth" />
    }
}

/// A bar per day. Drawn with SVG attributes, not inline styles (the CSP allows no inline
/// style), and scaled with the viewBox so it needs no JavaScript.
#[component]
fn Chart(
    title: &'static str,
    days: Vec<DayTotals>,
    value: fn(&Totals) -> i64,
    label: fn(i64) -> String,
    test_id: &'static str,
) -> impl IntoView {
    const W: f64 = 300.0;
    const H: f64 = 100.0;
    let max = days
        .iter()
        .map(|d| value(&d.totals))
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = W / days.len().max(1) as f64;
    let first = days
        .first()
        .map(|d| format::month_day(d.day))
        .unwrap_or_default();
    let mid = days
        .get(days.len() / 2)
        .map(|d| format::month_day(d.day))
        .unwrap_or_default();
    let last = days
        .last()
        .map(|d| format::month_day(d.day))
        .unwrap_or_default();
    let bars = days
        .iter()
        .map(|d| (d.day, value(&d.totals), d.totals.errors))
        .enumerate()
        .map(|(i, (day, v, errors))| {
            let h = (v as f64 / max as f64 * (H - 4.0)).max(if v > 0 { 1.0 } else { 0.0 });
            let tip = format!(
                "{}: {}{}",
                format::date(day),
                label(v),
                if errors > 0 { format!(" ({errors} errors)") } else { String::new() }
            );
            view! {
                <g>
                    <title>{tip}</title>
                    <rect x=i as f64 * slot y="0" width=slot height=H class="fill-transparent hover:fill-slate-100" />
                    <rect x=i as f64 * slot + slot * 0.15 y=H - h width=slot * 0.7 height=h class="fill-indigo-500" data-value=v.to_string() />
                </g>
            }
        })
        .collect_view();
    view! {
        <section class=format!("{CARD} p-5") data-testid=test_id>
            <div class="flex items-baseline justify-between">
                <h2 class="text-sm font-medium text-slate-700">{title}</h2>
                <span class="text-xs text-slate-500">{format!("max {}", label(max))}</span>
            </div>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" class="mt-3 h-40 w-full" role="img" aria-label=title>
                <line x1="0" y1=H x2=W y2=H class="stroke-slate-300" vector-effect="non-scaling-stroke" />
                {bars}
            </svg>
            <div class="mt-1 flex justify-between text-xs text-slate-500">
                <span>{first}</span>
                <span>{mid}</span>
                <span>{last}</span>
            </div>
        </section>
    }
}

#[component]
fn Breakdown(
    title: &'static str,
    rows: Vec<BreakdownRow>,
    base: String,
    param: &'static str,
    test_id: &'static str,
) -> impl IntoView {
    if rows.is_empty() {
        return ().into_any();
    }
    let body = rows
        .into_iter()
        .map(|r| {
            let t = r.totals;
            let href = if r.value.is_empty() {
                None
            } else {
                let q = super::nav::query_string([(param, r.value.as_str()), ("range", "30d")]);
                Some(format!("{base}{q}"))
            };
            view! {
                <tr data-testid="breakdown-row">
                    <td class=TD>
                        {match href {
                            Some(h) => view! { <a href=h class="text-indigo-700 hover:underline">{r.label.clone()}</a> }.into_any(),
                            None => view! { <span>{r.label.clone()}</span> }.into_any(),
                        }}
                    </td>
                    <td class=format!("{TD} text-right tabular-nums") data-testid="breakdown-requests">{format::int(t.requests)}</td>
                    <td class=format!("{TD} text-right tabular-nums")>{format::int(t.errors)}</td>
                    <td class=format!("{TD} text-right tabular-nums")>{format::int(t.input_tokens)}</td>
                    <td class=format!("{TD} text-right tabular-nums")>{format::int(t.output_tokens)}</td>
                    <td class=format!("{TD} text-right")>
                        <Money nanos=t.cost_billed_nanos />
                        {(t.cost_estimated_nanos > 0).then(|| view! { <span class="block"><Money nanos=t.cost_estimated_nanos estimated=true /></span> })}
                        {(t.unpriced > 0).then(|| view! {
                            <span class="block text-xs text-amber-800" title="No price is known for these calls; they are not counted.">{format!("{} unpriced", format::int(t.unpriced))}</span>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class=format!("{CARD} overflow-x-auto") data-testid=test_id>
            <h2 class="px-4 pt-4 text-sm font-medium text-slate-700">{title}</h2>
            <table class="mt-2 min-w-full divide-y divide-slate-200">
                <thead class="bg-slate-50">
                    <tr>
                        <th class=TH>""</th>
                        <th class=format!("{TH} text-right")>"Requests"</th>
                        <th class=format!("{TH} text-right")>"Errors"</th>
                        <th class=format!("{TH} text-right")>"Prompt tokens"</th>
                        <th class=format!("{TH} text-right")>"Completion tokens"</th>
                        <th class=format!("{TH} text-right")>"Cost"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">{body}</tbody>
            </table>
        </section>
    }
    .into_any()
}
