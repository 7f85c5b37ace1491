//! The user's own account: change the password (which ends every other session).

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::auth::ChangePassword;
use crate::api::error::{field_error, form_error};
use crate::components::ui::{BTN_PRIMARY, CARD};
use crate::components::{FormError, PasswordField, use_session};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let result = change.value();
    let err = move |f: &'static str| Signal::derive(move || field_error(&result.get(), f));
    let session = use_session();
    view! {
        <Title text="Account" />
        <div class="max-w-lg space-y-6">
            <div>
                <h1 class="text-2xl font-semibold">"Account"</h1>
                <p class="text-sm text-slate-600">
                    <Suspense>
                        {move || Suspend::new(async move {
                            session.me().await.map(|m| format!("{} · {}", m.name, m.email))
                        })}
                    </Suspense>
                </p>
            </div>
            <section class=format!("{CARD} space-y-4 p-5")>
                <h2 class="font-semibold">"Change password"</h2>
                <ActionForm action=change attr:class="space-y-4" attr:novalidate=true attr:data-testid="password-form">
                    <PasswordField label="Current password" name="current" autocomplete="current-password" error=err("current") />
                    <PasswordField label="New password" name="password" autocomplete="new-password" error=err("password") hint="At least 10 characters. Other browsers are logged out." />
                    <button type="submit" class=BTN_PRIMARY>"Change password"</button>
                    {move || matches!(result.get(), Some(Ok(()))).then(|| view! {
                        <span class="ml-3 text-sm text-emerald-700" data-testid="password-changed">"Password changed."</span>
                    })}
                </ActionForm>
                <FormError error=Signal::derive(move || form_error(&result.get())) />
            </section>
        </div>
    }
}
