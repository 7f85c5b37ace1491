//! The Overview tab.

use leptos::prelude::*;

#[component]
pub fn OverviewTab() -> impl IntoView {
    view! { <div data-testid="overview"></div> }
}
