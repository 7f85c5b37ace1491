//! The Traces tab.

use leptos::prelude::*;

#[component]
pub fn TracesTab() -> impl IntoView {
    view! { <div data-testid="traces"></div> }
}
