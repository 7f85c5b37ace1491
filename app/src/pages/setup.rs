//! First run: with an empty database, create the first administrator and organization.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use crate::api::auth::{Setup, current_session};
use crate::api::error::{field_error, form_error};
use crate::components::{FormError, PasswordField, TextField};

#[component]
pub fn SetupPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| current_session());
    let setup = ServerAction::<Setup>::new();
    let result = setup.value();
    let err = move |name: &'static str| Signal::derive(move || field_error(&result.get(), name));
    // The link the server prints carries the token: `/setup?token=…`.
    let query = leptos_router::hooks::use_query_map();
    let token = query.read_untracked().get("token").unwrap_or_default();
    view! {
        <Title text="Set up" />
        <Suspense>
            {move || {
                let token = token.clone();
                Suspend::new(async move {
                match info.await {
                    Ok(i) if i.initialized => view! { <Redirect path="/login" /> }.into_any(),
                    _ => {
                        view! {
                            <div class="flex min-h-full items-center justify-center px-4 py-12">
                                <div class="w-full max-w-md space-y-6 rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
                                    <div class="space-y-1">
                                        <h1 class="text-xl font-semibold">"Welcome to Antix"</h1>
                                        <p class="text-sm text-slate-600">
                                            "Create the first administrator and organization. You can invite others once you are in."
                                        </p>
                                    </div>
                                    <ActionForm action=setup attr:class="space-y-4" attr:data-testid="setup-form" attr:novalidate=true>
                                        <FormError error=Signal::derive(move || form_error(&result.get())) />
                                        <TextField label="Your name" name="name" autocomplete="name" error=err("name") autofocus=true />
                                        <TextField label="E-mail" name="email" kind="email" autocomplete="email" error=err("email") />
                                        <PasswordField
                                            label="Password"
                                            name="password"
                                            autocomplete="new-password"
                                            error=err("password")
                                            hint="At least 10 characters."
                                        />
                                        <TextField label="Organization name" name="org" autocomplete="organization" error=err("org") />
                                        <TextField
                                            label="Setup token"
                                            name="token"
                                            autocomplete="off"
                                            error=err("token")
                                            value=token.clone()
                                            hint="Printed in the server's log when it starts with an empty database (or run `antix admin setup-token`). It proves you run this server."
                                        />
                                        <button
                                            type="submit"
                                            class="w-full rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-700 disabled:opacity-60"
                                            disabled=move || setup.pending().get()
                                        >
                                            {move || if setup.pending().get() { "Creating…" } else { "Create administrator" }}
                                        </button>
                                    </ActionForm>
                                </div>
                            </div>
                        }
                            .into_any()
                    }
                }
            })
            }}
        </Suspense>
    }
}
