//! Login.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use crate::api::auth::{Login, current_session};
use crate::api::error::{field_error, form_error};
use crate::components::{FormError, PasswordField, TextField};

#[component]
pub fn LoginPage() -> impl IntoView {
    let info = Resource::new(|| (), |_| current_session());
    let login = ServerAction::<Login>::new();
    let result = login.value();
    let err = move |name: &'static str| Signal::derive(move || field_error(&result.get(), name));
    view! {
        <Title text="Log in" />
        <Suspense>
            {move || Suspend::new(async move {
                match info.await {
                    Ok(i) if !i.initialized => view! { <Redirect path="/setup" /> }.into_any(),
                    Ok(i) if i.me.is_some() => view! { <Redirect path="/" /> }.into_any(),
                    _ => {
                        view! {
                            <div class="flex min-h-full items-center justify-center px-4 py-12">
                                <div class="w-full max-w-sm space-y-6 rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
                                    <div class="flex items-center gap-2">
                                        <img src="/favicon.svg" alt="" class="h-7 w-7" />
                                        <h1 class="text-xl font-semibold">"Log in to Antix"</h1>
                                    </div>
                                    <ActionForm action=login attr:class="space-y-4" attr:data-testid="login-form" attr:novalidate=true>
                                        <FormError error=Signal::derive(move || form_error(&result.get())) />
                                        <TextField label="E-mail" name="email" kind="email" autocomplete="username" error=err("email") autofocus=true />
                                        <PasswordField label="Password" name="password" autocomplete="current-password" error=err("password") />
                                        <button
                                            type="submit"
                                            class="w-full rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white hover:bg-indigo-700 disabled:opacity-60"
                                            disabled=move || login.pending().get()
                                        >
                                            {move || if login.pending().get() { "Logging in…" } else { "Log in" }}
                                        </button>
                                    </ActionForm>
                                </div>
                            </div>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}
