//! The landing page after login.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::use_me;

#[component]
pub fn HomePage() -> impl IntoView {
    let me = use_me();
    let (name, org, role) = me
        .as_ref()
        .map(|m| {
            let cur = m.current();
            (
                m.name.clone(),
                cur.map(|o| o.name.clone()).unwrap_or_default(),
                cur.map(|o| o.role.label()).unwrap_or(""),
            )
        })
        .unwrap_or_default();
    view! {
        <Title text="Home" />
        <div class="space-y-6">
            <div>
                <h1 class="text-2xl font-semibold" data-testid="welcome">{format!("Welcome, {name}")}</h1>
                <p class="mt-1 text-sm text-slate-600">
                    "You are working in "
                    <span class="font-medium text-slate-900">{org}</span>
                    " as "
                    <span class="font-medium text-slate-900">{role}</span>
                    "."
                </p>
            </div>
        </div>
    }
}
