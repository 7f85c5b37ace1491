//! Provider credentials of the organization: one card per provider listing its credentials
//! (name, last four characters, weight, limits, whether it is on or resting), each with Test,
//! Turn off/on and Remove; and a form to add one or replace one by name (admins). Several
//! credentials of a provider share its calls by weight; one that fails rests a while.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::credentials::{
    DeleteCredential, SetCredential, SetCredentialEnabled, TestCredential, list_credentials,
};
use crate::api::error::{field_error, form_error};
use crate::components::ui::{BTN_LINK, BTN_PRIMARY, BTN_SECONDARY, Badge, CARD, INPUT};
use crate::components::{FieldError, FormError};
use crate::format;
use crate::model::{CredentialView, ProviderCredentials};

#[component]
pub fn CredentialsPage() -> impl IntoView {
    let set = ServerAction::<SetCredential>::new();
    let delete = ServerAction::<DeleteCredential>::new();
    let toggle = ServerAction::<SetCredentialEnabled>::new();
    let data = Resource::new(
        move || {
            (
                set.version().get(),
                delete.version().get(),
                toggle.version().get(),
            )
        },
        |_| list_credentials(),
    );
    view! {
        <Title text="Credentials" />
        <div class="space-y-6">
            <div>
                <h1 class="text-2xl font-semibold">"Provider credentials"</h1>
                <p class="text-sm text-slate-600">
                    "The organization's own provider keys, used for calls made with virtual keys. Stored encrypted; shown only by their last four characters. With several for a provider, calls are shared between them by weight, and one that answers 429 or 5xx rests for a while."
                </p>
            </div>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! {
                            <div class="grid gap-6 lg:grid-cols-3">
                                {page.providers.into_iter().map(|c| view! {
                                    <ProviderCard c=c is_admin=page.is_admin set=set delete=delete toggle=toggle />
                                }).collect_view()}
                            </div>
                        }.into_any(),
                        Err(e) => view! { <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn ProviderCard(
    c: ProviderCredentials,
    is_admin: bool,
    set: ServerAction<SetCredential>,
    delete: ServerAction<DeleteCredential>,
    toggle: ServerAction<SetCredentialEnabled>,
) -> impl IntoView {
    let provider = c.provider.clone();
    let result = set.value();
    let mine = {
        let p = provider.clone();
        move || set.input().get().is_some_and(|i| i.provider == p)
    };
    let err = {
        let mine = mine.clone();
        move |f: &'static str| {
            let mine = mine.clone();
            Signal::derive(move || {
                if mine() {
                    field_error(&result.get(), f)
                } else {
                    None
                }
            })
        }
    };
    let is_openai = provider == "openai";
    let count = c.credentials.len();
    let p = provider.clone();
    let card_id = format!("cred-{provider}");
    let form_provider = provider.clone();
    let rows = c
        .credentials
        .into_iter()
        .map(
            |cred| view! { <CredentialRow c=cred is_admin=is_admin delete=delete toggle=toggle /> },
        )
        .collect_view();
    let field = move |label: &'static str,
                      name: &'static str,
                      placeholder: &'static str,
                      kind: &'static str| {
        let id = format!("{name}-{p}");
        view! {
            <div class="space-y-1">
                <label class="block text-sm font-medium text-slate-700" for=id.clone()>{label}</label>
                <input id=id.clone() name=name type=kind autocomplete="off" class=INPUT placeholder=placeholder />
                <FieldError id=format!("{id}-error") error=err(name) />
            </div>
        }
    };
    view! {
        <section class=format!("{CARD} space-y-4 p-5") data-testid=card_id>
            <div class="flex items-center justify-between">
                <h2 class="font-semibold">{c.label.clone()}</h2>
                {if count == 0 {
                    view! { <Badge text="Not set" /> }.into_any()
                } else {
                    view! { <Badge text=format::count(count as i64, "credential", "credentials") tone="green" /> }.into_any()
                }}
            </div>
            <ul class="space-y-3">{rows}</ul>
            {is_admin.then(|| view! {
                <ActionForm action=set attr:class="space-y-3 border-t border-slate-100 pt-3" attr:novalidate=true attr:data-testid="credential-form">
                    <p class="text-xs text-slate-500">"Add a credential, or replace one by its name."</p>
                    <input type="hidden" name="provider" value=form_provider.clone() />
                    {field("Name", "name", "default", "text")}
                    {field("API key", "api_key", "sk-…", "password")}
                    {if is_openai {
                        field("Custom base URL (optional, OpenAI-compatible providers)", "base_url", "https://api.example.com/v1", "text").into_any()
                    } else {
                        view! { <input type="hidden" name="base_url" value="" /> }.into_any()
                    }}
                    <div class="grid grid-cols-3 gap-2">
                        {field("Weight", "weight", "1", "text")}
                        {field("Requests/min", "rpm", "no limit", "text")}
                        {field("Tokens/min", "tpm", "no limit", "text")}
                    </div>
                    <button type="submit" class=BTN_PRIMARY>"Save"</button>
                </ActionForm>
            })}
            <FormError error=Signal::derive(move || if mine() { form_error(&result.get()) } else { None }) />
        </section>
    }
}

#[component]
fn CredentialRow(
    c: CredentialView,
    is_admin: bool,
    delete: ServerAction<DeleteCredential>,
    toggle: ServerAction<SetCredentialEnabled>,
) -> impl IntoView {
    let test = ServerAction::<TestCredential>::new();
    let id = c.id;
    let enabled = c.enabled;
    let limits = [
        c.rpm.map(|r| format!("{} req/min", format::int(r))),
        c.tpm.map(|t| format!("{} tok/min", format::int(t))),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    view! {
        <li class="space-y-1 rounded-md border border-slate-200 p-3" data-testid="credential-row" data-name=c.name.clone()>
            <div class="flex flex-wrap items-center gap-2">
                <span class="font-medium" data-testid="credential-name">{c.name.clone()}</span>
                <Badge text=format!("…{}", c.last4) tone="green" />
                {(!c.enabled).then(|| view! { <Badge text="off" /> })}
                {c.resting_until.map(|t| view! { <Badge text=format!("resting until {}", format::time_of_day(t)) tone="amber" /> })}
                <span class="text-xs text-slate-500" data-testid="credential-weight">{format!("weight {}", c.weight)}</span>
            </div>
            <p class="text-xs text-slate-500">
                {format!("Set {} by {}", format::datetime(c.updated_at), c.updated_by.clone().unwrap_or_default())}
                {(!limits.is_empty()).then(|| view! { <span class="block">{limits.clone()}</span> })}
                {c.base_url.clone().map(|u| view! { <span class="block">"Base URL: " <code>{u}</code></span> })}
            </p>
            {is_admin.then(|| view! {
                <div class="flex flex-wrap items-center gap-3">
                    <button
                        type="button"
                        class=BTN_SECONDARY
                        disabled=move || test.pending().get()
                        data-testid="test-credential"
                        on:click=move |_| { test.dispatch(TestCredential { id }); }
                    >
                        {move || if test.pending().get() { "Testing…" } else { "Test" }}
                    </button>
                    <button
                        type="button"
                        class=BTN_LINK
                        data-testid="toggle-credential"
                        on:click=move |_| { toggle.dispatch(SetCredentialEnabled { id, enabled: !enabled }); }
                    >
                        {if enabled { "Turn off" } else { "Turn on" }}
                    </button>
                    <button
                        type="button"
                        class=format!("{BTN_LINK} text-red-600")
                        data-testid="delete-credential"
                        on:click=move |_| { delete.dispatch(DeleteCredential { id }); }
                    >
                        "Remove"
                    </button>
                </div>
                <div data-testid="test-result" role="status">
                    {move || test.value().get().map(|r| match r {
                        Ok(t) => view! {
                            <p class=if t.ok { "text-sm text-emerald-700" } else { "text-sm text-red-700" }>
                                {format!("{} ({} ms)", t.message, t.latency_ms)}
                            </p>
                        }.into_any(),
                        Err(e) => view! { <p class="text-sm text-red-700">{e.to_string()}</p> }.into_any(),
                    })}
                </div>
            })}
        </li>
    }
}
