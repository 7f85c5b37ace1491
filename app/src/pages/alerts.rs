//! Budget alerts on the Members page (admins): where alerts go, at which thresholds, the
//! organization's monthly alert budget, the signing secret, a test delivery, and the latest
//! alerts with how their delivery went.

use leptos::prelude::*;

use crate::api::alerts::{RotateAlertSecret, TestAlert, UpdateAlerts, get_alerts};
use crate::api::error::{field_error, form_error};
use crate::components::ui::{BTN_LINK, BTN_PRIMARY, BTN_SECONDARY, Badge, CARD, INPUT, TD, TH};
use crate::components::{FieldError, FormError};
use crate::format;
use crate::model::AlertsPage;

#[component]
pub fn BudgetAlerts() -> impl IntoView {
    let save = ServerAction::<UpdateAlerts>::new();
    let rotate = ServerAction::<RotateAlertSecret>::new();
    let test = ServerAction::<TestAlert>::new();
    let data = Resource::new(
        move || (save.version().get(), rotate.version().get()),
        |_| get_alerts(),
    );
    view! {
        <section class=format!("{CARD} space-y-4 p-5") data-testid="budget-alerts">
            <div>
                <h2 class="font-semibold">"Budget alerts"</h2>
                <p class="text-sm text-slate-600">
                    "An alert fires once per budget window when a virtual key's spend crosses a threshold of its daily, monthly or total budget, or the organization's month crosses a threshold of the alert budget below. Alerts are listed here and posted to the webhook (Slack-compatible JSON, signed with "
                    <code>"X-Antix-Signature"</code>"), retried with backoff when it fails."
                </p>
            </div>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! { <AlertsBody page=page save=save rotate=rotate test=test /> }.into_any(),
                        Err(e) => view! { <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn AlertsBody(
    page: AlertsPage,
    save: ServerAction<UpdateAlerts>,
    rotate: ServerAction<RotateAlertSecret>,
    test: ServerAction<TestAlert>,
) -> impl IntoView {
    let result = save.value();
    let tested = test.value();
    let has_webhook = !page.webhook_url.is_empty();
    view! {
        <ActionForm action=save attr:class="grid gap-3 md:grid-cols-2" attr:novalidate=true attr:data-testid="alerts-form">
            <div class="space-y-1 md:col-span-2">
                <label for="f-webhook" class="block text-sm font-medium text-slate-700">"Webhook URL (empty: alerts show here only)"</label>
                <input id="f-webhook" name="webhook_url" class=INPUT placeholder="https://hooks.slack.com/services/…" value=page.webhook_url.clone() data-testid="alerts-webhook" />
                <FieldError id="f-webhook-error".into() error=Signal::derive(move || field_error(&result.get(), "webhook_url")) />
            </div>
            <div class="space-y-1">
                <label for="f-thresholds" class="block text-sm font-medium text-slate-700">"Thresholds (% of a budget)"</label>
                <input id="f-thresholds" name="thresholds" class=INPUT value=page.thresholds.clone() data-testid="alerts-thresholds" />
                <FieldError id="f-thresholds-error".into() error=Signal::derive(move || field_error(&result.get(), "thresholds")) />
            </div>
            <div class="space-y-1">
                <label for="f-org-budget" class="block text-sm font-medium text-slate-700">"Organization monthly alert budget, USD (alerts only)"</label>
                <input id="f-org-budget" name="org_monthly_budget" inputmode="decimal" class=INPUT placeholder="none" value=page.org_monthly_budget.clone() data-testid="alerts-org-budget" />
                <FieldError id="f-org-budget-error".into() error=Signal::derive(move || field_error(&result.get(), "org_monthly_budget")) />
            </div>
            <div class="flex items-center gap-3 md:col-span-2">
                <button type="submit" class=BTN_PRIMARY data-testid="alerts-save">"Save alerts"</button>
                {move || matches!(result.get(), Some(Ok(()))).then(|| view! { <span class="text-sm text-emerald-700" data-testid="alerts-saved">"Saved."</span> })}
            </div>
        </ActionForm>
        <FormError error=Signal::derive(move || form_error(&result.get())) />
        <div class="space-y-2 rounded-md bg-slate-50 p-3">
            <p class="text-sm font-medium text-slate-700">"Signing secret"</p>
            <code class="block break-all text-xs" data-testid="alerts-secret">{page.signing_secret.clone()}</code>
            <p class="text-xs text-slate-500">"Receivers check "<code>"v1"</code>" = hex HMAC-SHA256 of "<code>"<t>.<body>"</code>" with this secret, and that "<code>"t"</code>" (unix seconds) is recent."</p>
            <button type="button" class=format!("{BTN_LINK} text-sm") data-testid="alerts-rotate"
                on:click=move |_| { rotate.dispatch(RotateAlertSecret {}); }>
                "Make a new secret"
            </button>
        </div>
        <div class="flex flex-wrap items-center gap-3">
            <button type="button" class=BTN_SECONDARY data-testid="alerts-send-test" disabled=!has_webhook
                title=if has_webhook { "Post a sample alert to the webhook now" } else { "Save a webhook URL first" }
                on:click=move |_| { test.dispatch(TestAlert {}); }>
                "Send test alert"
            </button>
            {move || test.pending().get().then(|| view! { <span class="text-sm text-slate-500">"Sending…"</span> })}
            {move || tested.get().map(|r| match r {
                Ok(t) if t.delivered => view! {
                    <span class="text-sm text-emerald-700" data-testid="alerts-test-result">
                        {format!("Delivered (HTTP {}).", t.status.unwrap_or(200))}
                    </span>
                }.into_any(),
                Ok(t) => view! {
                    <span class="text-sm text-red-700" data-testid="alerts-test-result">
                        {format!("Not delivered: {}.", t.error.unwrap_or_default())}
                    </span>
                }.into_any(),
                Err(e) => view! { <span class="text-sm text-red-700" data-testid="alerts-test-result">{e.to_string()}</span> }.into_any(),
            })}
        </div>
        {if page.events.is_empty() {
            view! { <p class="text-sm text-slate-500" data-testid="alerts-empty">"No alert has fired yet."</p> }.into_any()
        } else {
            view! {
                <table class="min-w-full divide-y divide-slate-200" data-testid="alerts-table">
                    <thead class="bg-slate-50">
                        <tr>
                            <th class=TH>"When"</th>
                            <th class=TH>"Alert"</th>
                            <th class=TH>"Delivery"</th>
                        </tr>
                    </thead>
                    <tbody class="divide-y divide-slate-100">
                        {page.events.into_iter().map(|e| {
                            let tone = match e.state.as_str() {
                                "delivered" => "green",
                                "retrying" => "amber",
                                "failed" => "red",
                                _ => "slate",
                            };
                            view! {
                                <tr data-testid="alert-row">
                                    <td class=TD>{format::datetime(e.created_at)}</td>
                                    <td class=TD>{e.message.clone()}</td>
                                    <td class=TD>
                                        <Badge text=e.state.clone() tone=tone />
                                        {(e.attempts > 1).then(|| format!(" after {} attempts", e.attempts))}
                                        {e.detail.clone().map(|d| view! { <p class="text-xs text-slate-500">{d}</p> })}
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    }
}
