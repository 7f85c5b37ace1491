//! Virtual keys: the list (prefix, owner, last use, spend against budget, limits), issuing a key
//! (shown once, with a copy button), editing limits, revoking.

use leptos::prelude::*;
use leptos_meta::Title;
use uuid::Uuid;

use crate::api::error::field_error;
use crate::api::keys::{CreateKey, KeyForm, RevokeKey, UpdateKey, list_keys};
use crate::components::FieldError;
use crate::components::ui::{
    BTN_LINK, BTN_PRIMARY, BTN_SECONDARY, Badge, CARD, CopyButton, ErrorBanner, INPUT, Modal, TD,
    TH,
};
use crate::format;
use crate::model::{EndpointChoice, KeySummary, KeysPage as Page};

#[component]
pub fn KeysPage() -> impl IntoView {
    let create = ServerAction::<CreateKey>::new();
    let update = ServerAction::<UpdateKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let data = Resource::new(
        move || {
            (
                create.version().get(),
                update.version().get(),
                revoke.version().get(),
            )
        },
        |_| list_keys(),
    );
    let show_created = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            show_created.set(true);
        }
    });
    let created = Signal::derive(move || create.value().get().and_then(Result::ok));
    view! {
        <Title text="Virtual keys" />
        <div class="space-y-6">
            <div>
                <h1 class="text-2xl font-semibold">"Virtual keys"</h1>
                <p class="text-sm text-slate-600">
                    "Give these to apps instead of provider keys: calls are made with the organization's credentials, billed to it, and held to the limits you set here."
                </p>
            </div>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! {
                            {page.can_create.then(|| view! { <KeyEditor endpoints=page.endpoints.clone() create=create update=update editing=None is_admin=page.is_admin /> })}
                            <KeyTable page=page update=update revoke=revoke />
                        }
                            .into_any(),
                        Err(e) => view! { <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
        <Modal open=show_created title="Your new virtual key">
            {move || created.get().map(|k| view! {
                <p class="text-sm text-slate-600">
                    "Copy it now: this is the only time it is shown. Only a hash is stored."
                </p>
                <code class="block break-all rounded bg-slate-100 px-3 py-2 text-sm" data-testid="new-key">{k.secret.clone()}</code>
                <div class="flex justify-end gap-2">
                    <CopyButton text=k.secret.clone() label="Copy key" test_id="copy-key" />
                    <button type="button" class=BTN_PRIMARY on:click=move |_| show_created.set(false)>"Done"</button>
                </div>
            })}
        </Modal>
    }
}

fn nanos_text(n: Option<i64>) -> String {
    n.map(format::usd_exact).unwrap_or_default()
}

/// The create form, or (with `editing`) the edit form of one key.
#[component]
fn KeyEditor(
    endpoints: Vec<EndpointChoice>,
    create: ServerAction<CreateKey>,
    update: ServerAction<UpdateKey>,
    editing: Option<KeySummary>,
    is_admin: bool,
) -> impl IntoView {
    // A member sees their key's limits but only an admin changes them (or a key's expiry).
    let locked = editing.is_some() && !is_admin;
    let initial = editing
        .as_ref()
        .map(|k| KeyForm {
            name: k.name.clone(),
            expires: k
                .expires_at
                .map(|t| format::date(t - 86_400_000))
                .unwrap_or_default(),
            budget_daily: nanos_text(k.limits.budget_daily_nanos),
            budget_monthly: nanos_text(k.limits.budget_monthly_nanos),
            budget_total: nanos_text(k.limits.budget_total_nanos),
            rpm: k.limits.rpm.map(|n| n.to_string()).unwrap_or_default(),
            tpm: k.limits.tpm.map(|n| n.to_string()).unwrap_or_default(),
            allowed_models: k.limits.allowed_models.join(", "),
            allowed_endpoints: k.limits.allowed_endpoints.clone(),
            allow_unmetered: k.limits.allow_unmetered,
        })
        .unwrap_or_default();
    let form = RwSignal::new(initial);
    let edit_id = editing.as_ref().map(|k| k.id);
    let open = RwSignal::new(editing.is_some());
    let result = Signal::derive(move || match edit_id {
        Some(_) => update.value().get().map(|r| r.map(|_| ())),
        None => create.value().get().map(|r| r.map(|_| ())),
    });
    let pending = Signal::derive(move || {
        if edit_id.is_some() {
            update.pending().get()
        } else {
            create.pending().get()
        }
    });
    let err = move |f: &'static str| Signal::derive(move || field_error(&result.get(), f));
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let f = form.get_untracked();
        match edit_id {
            Some(id) => {
                update.dispatch(UpdateKey { id, form: f });
            }
            None => {
                create.dispatch(CreateKey { form: f });
            }
        }
    };
    // Clear the form once a key was created.
    Effect::new(move |_| {
        if edit_id.is_none() && matches!(create.value().get(), Some(Ok(_))) {
            form.set(KeyForm::default());
        }
    });
    let text = move |label: &'static str,
                     field: &'static str,
                     placeholder: &'static str,
                     get: fn(&KeyForm) -> String,
                     set: fn(&mut KeyForm, String)| {
        let id = format!("k-{field}");
        view! {
            <div class="space-y-1">
                <label for=id.clone() class="block text-sm font-medium text-slate-700">{label}</label>
                <input
                    id=id
                    class=INPUT
                    placeholder=placeholder
                    disabled=locked && field != "name"
                    prop:value=move || get(&form.read())
                    on:input=move |ev| form.update(|f| set(f, event_target_value(&ev)))
                />
                <FieldError id=format!("k-{field}-error") error=err(field) />
            </div>
        }
    };
    let title = if edit_id.is_some() {
        "Edit key"
    } else {
        "Create key"
    };
    view! {
        <section class=format!("{CARD} p-5")>
            <div class="flex items-center justify-between">
                <h2 class="text-base font-semibold">{title}</h2>
                {edit_id.is_none().then(|| view! {
                    <button type="button" class=BTN_LINK on:click=move |_| open.update(|o| *o = !*o) data-testid="toggle-create-key">
                        {move || if open.get() { "Hide" } else { "New key…" }}
                    </button>
                })}
            </div>
            <Show when=move || open.get()>
                <form class="mt-4 space-y-4" on:submit=submit novalidate=true data-testid="key-form">
                    <div class="grid gap-4 md:grid-cols-3">
                        {text("Name", "name", "e.g. ci-bot", |f| f.name.clone(), |f, v| f.name = v)}
                        {text("Expires after (UTC date, optional)", "expires", "2027-01-31", |f| f.expires.clone(), |f, v| f.expires = v)}
                        {text("Allowed models (optional)", "allowed_models", "gpt-4o*, claude-*", |f| f.allowed_models.clone(), |f, v| f.allowed_models = v)}
                        {text("Budget per day, USD", "budget_daily", "no limit", |f| f.budget_daily.clone(), |f, v| f.budget_daily = v)}
                        {text("Budget per month, USD", "budget_monthly", "no limit", |f| f.budget_monthly.clone(), |f, v| f.budget_monthly = v)}
                        {text("Lifetime budget, USD", "budget_total", "no limit", |f| f.budget_total.clone(), |f, v| f.budget_total = v)}
                        {text("Requests per minute", "rpm", "no limit", |f| f.rpm.clone(), |f, v| f.rpm = v)}
                        {text("Tokens per minute", "tpm", "no limit", |f| f.tpm.clone(), |f, v| f.tpm = v)}
                    </div>
                    {locked.then(|| view! {
                        <p class="text-sm text-slate-600" data-testid="limits-read-only">
                            "Only organization admins change a key's limits and expiry; you can rename it."
                        </p>
                    })}
                    <label class="flex items-start gap-2 text-sm">
                        <input
                            type="checkbox"
                            class="mt-1"
                            data-testid="allow-unmetered"
                            disabled=locked || !is_admin
                            prop:checked=move || form.read().allow_unmetered
                            on:change=move |ev| form.update(|f| f.allow_unmetered = event_target_checked(&ev))
                        />
                        <span>
                            <span class="font-medium text-slate-700">"Allow APIs Antix cannot meter"{(!is_admin).then_some(" (admins only)")}</span>
                            <span class="block text-xs text-slate-500">
                                "Fine-tuning jobs, vector stores, realtime sessions and other APIs whose cost Antix cannot tell. With a budget, model list or token limit set, the key is refused these unless you allow them here; what they cost is then not counted against its budget."
                            </span>
                        </span>
                    </label>
                    <fieldset class="space-y-1" disabled=locked>
                        <legend class="text-sm font-medium text-slate-700">"Allowed endpoints (none checked: all)"</legend>
                        <div class="flex flex-wrap gap-x-4 gap-y-1">
                            {endpoints.clone().into_iter().map(|e| {
                                let id: Uuid = e.id;
                                view! {
                                    <label class="flex items-center gap-2 text-sm">
                                        <input
                                            type="checkbox"
                                            prop:checked=move || form.read().allowed_endpoints.contains(&id)
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                form.update(|f| {
                                                    f.allowed_endpoints.retain(|x| *x != id);
                                                    if on {
                                                        f.allowed_endpoints.push(id);
                                                    }
                                                });
                                            }
                                        />
                                        {e.name.clone()}
                                        <span class="text-xs text-slate-400">{e.scope.label()}</span>
                                    </label>
                                }
                            }).collect_view()}
                        </div>
                        <FieldError id="k-allowed_endpoints-error".into() error=err("allowed_endpoints") />
                    </fieldset>
                    <ErrorBanner error=Signal::derive(move || match result.get() {
                        Some(Err(crate::api::ApiError::Invalid(_))) | None | Some(Ok(())) => None,
                        Some(Err(e)) => Some(e.to_string()),
                    }) />
                    <div class="flex gap-2">
                        <button type="submit" class=BTN_PRIMARY disabled=move || pending.get()>
                            {if locked { "Save name" } else if edit_id.is_some() { "Save limits" } else { "Create key" }}
                        </button>
                    </div>
                </form>
            </Show>
        </section>
    }
}

fn limit_summary(k: &KeySummary) -> String {
    let l = &k.limits;
    let mut parts = Vec::new();
    if let Some(n) = l.rpm {
        parts.push(format!("{n} req/min"));
    }
    if let Some(n) = l.tpm {
        parts.push(format!("{} tok/min", format::tokens(n)));
    }
    if !l.allowed_models.is_empty() {
        parts.push(format!("models: {}", l.allowed_models.join(", ")));
    }
    if !l.allowed_endpoints.is_empty() {
        parts.push(format::count(
            l.allowed_endpoints.len() as i64,
            "endpoint",
            "endpoints",
        ));
    }
    if l.allow_unmetered {
        parts.push("unmetered APIs allowed".into());
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(" · ")
    }
}

fn budget_line(label: &str, spent: i64, budget: Option<i64>) -> Option<String> {
    budget.map(|b| format!("{label}: {} of {}", format::usd(spent), format::usd(b)))
}

#[component]
fn KeyTable(
    page: Page,
    update: ServerAction<UpdateKey>,
    revoke: ServerAction<RevokeKey>,
) -> impl IntoView {
    let editing = RwSignal::new(None::<Uuid>);
    let endpoints = page.endpoints.clone();
    let is_admin = page.is_admin;
    let create_dummy = ServerAction::<CreateKey>::new();
    if page.keys.is_empty() {
        return view! { <p class=format!("{CARD} p-6 text-sm text-slate-500")>"No keys yet."</p> }
            .into_any();
    }
    let keys = page.keys.clone();
    view! {
        <ErrorBanner error=Signal::derive(move || revoke.value().get().and_then(|r| r.err()).map(|e| e.to_string())) />
        <div class=format!("{CARD} overflow-x-auto")>
            <table class="min-w-full divide-y divide-slate-200" data-testid="key-table">
                <thead class="bg-slate-50">
                    <tr>
                        <th class=TH>"Key"</th>
                        <th class=TH>"Owner"</th>
                        <th class=TH>"Last used"</th>
                        <th class=TH>"Spend"</th>
                        <th class=TH>"Limits"</th>
                        <th class=TH>"Status"</th>
                        <th class=TH></th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {page.keys.into_iter().map(|k| {
                        let id = k.id;
                        let status = if k.revoked_at.is_some() {
                            view! { <Badge text="Revoked" tone="red" /> }.into_any()
                        } else if k.expired {
                            view! { <Badge text="Expired" tone="amber" /> }.into_any()
                        } else {
                            view! { <Badge text="Active" tone="green" /> }.into_any()
                        };
                        let budgets: Vec<String> = [
                            budget_line("today", k.spend.day_nanos, k.limits.budget_daily_nanos),
                            budget_line("this month", k.spend.month_nanos, k.limits.budget_monthly_nanos),
                            budget_line("lifetime", k.spend.total_nanos, k.limits.budget_total_nanos),
                        ].into_iter().flatten().collect();
                        let active = k.revoked_at.is_none();
                        view! {
                            <tr data-testid="key-row">
                                <td class=TD>
                                    <div class="font-medium">{k.name.clone()}</div>
                                    <code class="text-xs text-slate-500">{k.display.clone()}</code>
                                </td>
                                <td class=TD>{k.created_by.clone()}</td>
                                <td class=TD>{k.last_used_at.map(format::datetime).unwrap_or_else(|| "never".into())}</td>
                                <td class=TD>
                                    <div class="tabular-nums">{format!("{} total", format::usd(k.spend.total_nanos))}</div>
                                    {budgets.into_iter().map(|b| view! { <div class="text-xs text-slate-500" data-testid="budget-line">{b}</div> }).collect_view()}
                                </td>
                                <td class=format!("{TD} text-xs")>{limit_summary(&k)}</td>
                                <td class=TD>{status}</td>
                                <td class=format!("{TD} whitespace-nowrap text-right")>
                                    {(k.can_manage && active).then(|| view! {
                                        <button type="button" class=BTN_LINK on:click=move |_| editing.set(Some(id))>"Edit"</button>
                                        <button
                                            type="button"
                                            class=format!("{BTN_LINK} ml-3 text-red-600 hover:text-red-800")
                                            data-testid="revoke"
                                            on:click=move |_| { revoke.dispatch(RevokeKey { id }); }
                                        >
                                            "Revoke"
                                        </button>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        {move || editing.get().and_then(|id| keys.iter().find(|k| k.id == id).cloned()).map(|k| view! {
            <div class="space-y-2">
                <KeyEditor endpoints=endpoints.clone() create=create_dummy update=update editing=Some(k) is_admin=is_admin />
                <button type="button" class=BTN_SECONDARY on:click=move |_| editing.set(None)>"Close"</button>
            </div>
        })}
    }
        .into_any()
}
