//! Provider credentials of the organization: one card per provider with the key's last four
//! characters, a form to set or replace it (admins), a Test button and removal.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::credentials::{DeleteCredential, SetCredential, TestCredential, list_credentials};
use crate::api::error::{field_error, form_error};
use crate::components::ui::{BTN_LINK, BTN_PRIMARY, BTN_SECONDARY, Badge, CARD, INPUT};
use crate::components::{FieldError, FormError};
use crate::format;
use crate::model::CredentialView;

#[component]
pub fn CredentialsPage() -> impl IntoView {
    let set = ServerAction::<SetCredential>::new();
    let delete = ServerAction::<DeleteCredential>::new();
    let data = Resource::new(
        move || (set.version().get(), delete.version().get()),
        |_| list_credentials(),
    );
    view! {
        <Title text="Credentials" />
        <div class="space-y-6">
            <div>
                <h1 class="text-2xl font-semibold">"Provider credentials"</h1>
                <p class="text-sm text-slate-600">
                    "The organization's own provider keys, used for calls made with virtual keys. Stored encrypted; shown only by their last four characters."
                </p>
            </div>
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! {
                            <div class="grid gap-6 lg:grid-cols-3">
                                {page.providers.into_iter().map(|c| view! {
                                    <ProviderCard c=c is_admin=page.is_admin set=set delete=delete />
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
    c: CredentialView,
    is_admin: bool,
    set: ServerAction<SetCredential>,
    delete: ServerAction<DeleteCredential>,
) -> impl IntoView {
    let test = ServerAction::<TestCredential>::new();
    let provider = c.provider.clone();
    let result = set.value();
    let mine = {
        let p = provider.clone();
        move || set.input().get().is_some_and(|i| i.provider == p) || result.get().is_some()
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
    let test_id = format!("cred-{provider}");
    let p_form = provider.clone();
    let p_delete = provider.clone();
    let p_test = provider.clone();
    view! {
        <section class=format!("{CARD} space-y-4 p-5") data-testid=test_id>
            <div class="flex items-center justify-between">
                <h2 class="font-semibold">{c.label.clone()}</h2>
                {if c.configured {
                    view! { <Badge text=format!("…{}", c.last4.clone().unwrap_or_default()) tone="green" /> }.into_any()
                } else {
                    view! { <Badge text="Not set" /> }.into_any()
                }}
            </div>
            {c.configured.then(|| view! {
                <p class="text-xs text-slate-500">
                    {format!(
                        "Set {} by {}",
                        c.updated_at.map(format::datetime).unwrap_or_default(),
                        c.updated_by.clone().unwrap_or_default()
                    )}
                    {c.base_url.clone().map(|u| view! { <span class="block">"Base URL: " <code>{u}</code></span> })}
                </p>
            })}
            {is_admin.then(|| view! {
                <ActionForm action=set attr:class="space-y-3" attr:novalidate=true attr:data-testid="credential-form">
                    <input type="hidden" name="provider" value=p_form.clone() />
                    <div class="space-y-1">
                        <label class="block text-sm font-medium text-slate-700" for=format!("key-{p_form}")>
                            {if c.configured { "Replace API key" } else { "API key" }}
                        </label>
                        <input id=format!("key-{p_form}") name="api_key" type="password" autocomplete="off" class=INPUT placeholder="sk-…" />
                        <FieldError id=format!("key-{p_form}-error") error=err("api_key") />
                    </div>
                    {if is_openai {
                        view! {
                            <div class="space-y-1">
                                <label class="block text-sm font-medium text-slate-700" for="base-openai">"Custom base URL (optional, OpenAI-compatible providers)"</label>
                                <input id="base-openai" name="base_url" class=INPUT placeholder="https://api.example.com" />
                                <FieldError id="base-openai-error".into() error=err("base_url") />
                            </div>
                        }.into_any()
                    } else {
                        view! { <input type="hidden" name="base_url" value="" /> }.into_any()
                    }}
                    <button type="submit" class=BTN_PRIMARY>"Save"</button>
                </ActionForm>
            })}
            <FormError error=Signal::derive(move || if mine() { form_error(&result.get()) } else { None }) />
            {(is_admin && c.configured).then(|| view! {
                <div class="flex items-center gap-3 border-t border-slate-100 pt-3">
                    <button
                        type="button"
                        class=BTN_SECONDARY
                        disabled=move || test.pending().get()
                        data-testid="test-credential"
                        on:click=move |_| { test.dispatch(TestCredential { provider: p_test.clone() }); }
                    >
                        {move || if test.pending().get() { "Testing…" } else { "Test" }}
                    </button>
                    <button
                        type="button"
                        class=format!("{BTN_LINK} text-red-600")
                        on:click=move |_| { delete.dispatch(DeleteCredential { provider: p_delete.clone() }); }
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
        </section>
    }
}
