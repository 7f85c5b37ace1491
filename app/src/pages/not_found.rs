//! The portal's 404 page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <div class="flex min-h-full flex-col items-center justify-center gap-3 p-12">
            <h1 class="text-xl font-semibold">"Page not found"</h1>
            <A href="/" attr:class="text-sm text-indigo-600 hover:underline">
                "Back to the portal"
            </A>
        </div>
    }
}
