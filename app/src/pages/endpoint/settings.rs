//! The Settings tab: rename, who may call it, fallbacks, duplicate as an org endpoint, archive.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use super::use_endpoint;
use crate::api::endpoints::{
    ArchiveEndpoint, DuplicateEndpoint, RenameEndpoint, SetEndpointAuth, SetEndpointFallbacks,
    SetEndpointRetention,
};
use crate::api::error::{field_error, form_error};
use crate::components::ui::{BTN_DANGER, BTN_PRIMARY, BTN_SECONDARY, CARD, ErrorBanner, INPUT};
use crate::components::{FieldError, FormError};

#[component]
pub fn SettingsTab() -> impl IntoView {
    let Some(endpoint) = use_endpoint() else {
        return ().into_any();
    };
    view! {
        <Suspense>
            {move || Suspend::new(async move { endpoint.0.await.ok().map(|e| view! { <SettingsBody e=e /> }) })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn SettingsBody(e: crate::model::EndpointDetail) -> impl IntoView {
    let rename = ServerAction::<RenameEndpoint>::new();
    let duplicate = ServerAction::<DuplicateEndpoint>::new();
    let archive = ServerAction::<ArchiveEndpoint>::new();
    let auth = ServerAction::<SetEndpointAuth>::new();
    let fallbacks = ServerAction::<SetEndpointFallbacks>::new();
    let fallbacks_result = fallbacks.value();
    let retention = ServerAction::<SetEndpointRetention>::new();
    let retention_result = retention.value();
    let inherited = match e.retention_inherited {
        0 => "Empty: follow the organization (traces kept forever).".to_owned(),
        n => format!("Empty: follow the organization ({n} days)."),
    };
    let navigate = use_navigate();
    // Reload the page after a change so the header shows it (and the proxy state is fresh).
    Effect::new(move |_| {
        if let Some(Ok(())) = rename.value().get() {
            let _ = window().location().reload();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = archive.value().get() {
            let _ = window().location().reload();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(id)) = duplicate.value().get() {
            navigate(&format!("/endpoints/{id}"), Default::default());
        }
    });
    let auth_result = auth.value();
    let passthrough = RwSignal::new(e.passthrough);
    let rename_result = rename.value();
    let archive_result = archive.value();
    let typed = RwSignal::new(String::new());
    let name = e.name.clone();
    let name_confirm = e.name.clone();
    let name_for_check = e.name.clone();
    let archived = e.archived_at.is_some();
    view! {
        <div class="grid gap-6 lg:grid-cols-2">
            <section class=format!("{CARD} space-y-3 p-5")>
                <h2 class="font-semibold">"Display name"</h2>
                <ActionForm action=rename attr:class="flex items-start gap-3" attr:novalidate=true attr:data-testid="rename-form">
                    <input type="hidden" name="id" value=e.id.to_string() />
                    <div class="flex-1 space-y-1">
                        <input name="name" class=INPUT value=name.clone() aria-label="Display name" disabled=!e.can_manage />
                        <FieldError id="rename-error".into() error=Signal::derive(move || field_error(&rename_result.get(), "name")) />
                    </div>
                    <button type="submit" class=BTN_PRIMARY disabled=!e.can_manage>"Save"</button>
                </ActionForm>
                <FormError error=Signal::derive(move || form_error(&rename_result.get())) />
                {(!e.can_manage && !archived).then(|| view! {
                    <p class="text-xs text-slate-500">"Only the owner (or an admin, for org-shared endpoints) can change this endpoint."</p>
                })}
            </section>
            <section class=format!("{CARD} space-y-3 p-5")>
                <h2 class="font-semibold">"Who may call it"</h2>
                <ActionForm action=auth attr:class="space-y-3" attr:novalidate=true attr:data-testid="auth-form">
                    <input type="hidden" name="id" value=e.id.to_string() />
                    <label class="flex items-start gap-2 text-sm">
                        <input
                            type="checkbox"
                            name="passthrough"
                            value="on"
                            class="mt-1"
                            data-testid="passthrough"
                            prop:checked=move || passthrough.get()
                            on:change=move |ev| passthrough.set(event_target_checked(&ev))
                            disabled=!e.can_manage || archived
                        />
                        <span>
                            <span class="font-medium text-slate-700">"Also accept provider keys and OAuth tokens"</span>
                            <span class="block text-xs text-slate-500">
                                "Callers may bring their own OpenAI, Anthropic or Gemini key, or a Claude Code subscription token, passed through to the provider. Turned off, the endpoint takes Antix virtual keys only: every call is billed to the organization under the key's limits, and anything else gets 403."
                            </span>
                        </span>
                    </label>
                    <button type="submit" class=BTN_PRIMARY disabled=!e.can_manage || archived data-testid="save-auth">"Save"</button>
                    {move || matches!(auth_result.get(), Some(Ok(()))).then(|| view! {
                        <span class="ml-3 text-sm text-green-700" data-testid="auth-saved">"Saved."</span>
                    })}
                </ActionForm>
                <FormError error=Signal::derive(move || form_error(&auth_result.get())) />
            </section>
            <section class=format!("{CARD} space-y-3 p-5 lg:col-span-2")>
                <h2 class="font-semibold">"Fallbacks"</h2>
                <p class="text-sm text-slate-600">
                    "When a call's provider stays rate-limited or down after its retries, or says the model is unavailable, overloaded or its context too small, the call is sent to these targets in order, before anything reaches the client. One per line: "
                    <code class="rounded bg-slate-100 px-1">"provider/model"</code>
                    ", or "
                    <code class="rounded bg-slate-100 px-1">"provider/model#credential"</code>
                    " for one of the organization's credentials. A chat call in another provider's shape is translated. Other providers' targets need a virtual key (a caller's own key only reaches its own provider). Per request: the "
                    <code class="rounded bg-slate-100 px-1">"X-Antix-Fallbacks"</code>
                    " header (comma-separated, or "
                    <code class="rounded bg-slate-100 px-1">"none"</code>
                    ")."
                </p>
                <ActionForm action=fallbacks attr:class="space-y-2" attr:novalidate=true attr:data-testid="fallbacks-form">
                    <input type="hidden" name="id" value=e.id.to_string() />
                    <label for="f-fallbacks" class="sr-only">"Fallbacks"</label>
                    <textarea
                        id="f-fallbacks"
                        name="fallbacks"
                        rows="4"
                        class=format!("{INPUT} font-mono text-sm")
                        placeholder="anthropic/claude-haiku-4-5\ngemini/gemini-2.5-flash"
                        spellcheck="false"
                        data-testid="fallbacks"
                        disabled=!e.can_manage || archived
                    >{e.fallbacks.clone()}</textarea>
                    <FieldError id="fallbacks-error".into() error=Signal::derive(move || field_error(&fallbacks_result.get(), "fallbacks")) />
                    <button type="submit" class=BTN_PRIMARY disabled=!e.can_manage || archived data-testid="save-fallbacks">"Save"</button>
                    {move || matches!(fallbacks_result.get(), Some(Ok(()))).then(|| view! {
                        <span class="ml-3 text-sm text-green-700" data-testid="fallbacks-saved">"Saved."</span>
                    })}
                </ActionForm>
                <FormError error=Signal::derive(move || form_error(&fallbacks_result.get())) />
            </section>
            <section class=format!("{CARD} space-y-3 p-5")>
                <h2 class="font-semibold">"Trace retention"</h2>
                <p class="text-sm text-slate-600">
                    "Days this endpoint keeps its traces (request, response, search text). Older ones are deleted in the background, a day at a time; the Overview's daily totals stay. 0 keeps them forever."
                </p>
                <ActionForm action=retention attr:class="flex items-start gap-3" attr:novalidate=true attr:data-testid="retention-form">
                    <input type="hidden" name="id" value=e.id.to_string() />
                    <div class="flex-1 space-y-1">
                        <input
                            name="days"
                            inputmode="numeric"
                            class=INPUT
                            value=e.retention_days.map(|d| d.to_string()).unwrap_or_default()
                            placeholder="inherit"
                            aria-label="Retention in days"
                            data-testid="retention-days"
                            disabled=!e.can_manage || archived
                        />
                        <p class="text-xs text-slate-500" data-testid="retention-inherited">{inherited}</p>
                        <FieldError id="retention-error".into() error=Signal::derive(move || field_error(&retention_result.get(), "days")) />
                    </div>
                    <button type="submit" class=BTN_PRIMARY disabled=!e.can_manage || archived data-testid="save-retention">"Save"</button>
                </ActionForm>
                {move || matches!(retention_result.get(), Some(Ok(()))).then(|| view! {
                    <span class="text-sm text-green-700" data-testid="retention-saved">"Saved."</span>
                })}
                <FormError error=Signal::derive(move || form_error(&retention_result.get())) />
            </section>
            <section class=format!("{CARD} space-y-3 p-5")>
                <h2 class="font-semibold">"Duplicate as Org Endpoint"</h2>
                <p class="text-sm text-slate-600">
                    "Creates an org-shared endpoint with the same name and a new URL, for the whole organization. This endpoint stays active."
                </p>
                <button
                    type="button"
                    class=BTN_SECONDARY
                    disabled=move || !e.can_duplicate || duplicate.pending().get()
                    data-testid="duplicate"
                    on:click=move |_| { duplicate.dispatch(DuplicateEndpoint { id: e.id }); }
                >
                    "Duplicate as Org Endpoint"
                </button>
                {(!e.can_duplicate).then(|| view! {
                    <p class="text-xs text-slate-500">"Available to organization admins, for personal endpoints."</p>
                })}
                <ErrorBanner error=Signal::derive(move || duplicate.value().get().and_then(|r| r.err()).map(|e| e.to_string())) />
            </section>
            <section class=format!("{CARD} space-y-3 border-red-200 p-5 lg:col-span-2")>
                <h2 class="font-semibold text-red-700">"Archive"</h2>
                <p class="text-sm text-slate-600">
                    "Archiving is permanent. Requests to this endpoint will get 410 Gone; its traces and spend stay visible here."
                </p>
                {if archived {
                    view! { <p class="text-sm font-medium text-red-700" data-testid="archived-note">"This endpoint is archived."</p> }.into_any()
                } else {
                    view! {
                        <ActionForm action=archive attr:class="flex flex-wrap items-start gap-3" attr:novalidate=true attr:data-testid="archive-form">
                            <input type="hidden" name="id" value=e.id.to_string() />
                            <div class="space-y-1">
                                <label for="f-confirm" class="block text-sm text-slate-700">
                                    "Type " <strong>{name_confirm.clone()}</strong> " to confirm"
                                </label>
                                <input
                                    id="f-confirm"
                                    name="confirm"
                                    class=INPUT
                                    autocomplete="off"
                                    disabled=!e.can_manage
                                    on:input=move |ev| typed.set(event_target_value(&ev))
                                />
                                <FieldError id="confirm-error".into() error=Signal::derive(move || field_error(&archive_result.get(), "confirm")) />
                            </div>
                            <button
                                type="submit"
                                class=BTN_DANGER
                                disabled=move || !e.can_manage || typed.get().trim() != name_for_check
                            >
                                "Archive endpoint"
                            </button>
                        </ActionForm>
                    }.into_any()
                }}
                <FormError error=Signal::derive(move || form_error(&archive_result.get())) />
            </section>
        </div>
    }
    .into_any()
}
