//! The Activity tab.

use leptos::prelude::*;

#[component]
pub fn ActivityTab() -> impl IntoView {
    view! { <div data-testid="activity"></div> }
}
