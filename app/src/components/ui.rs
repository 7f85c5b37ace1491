//! Small shared pieces: button and input styles, badges, a copy button, a modal, money and
//! status rendering.

use leptos::prelude::*;

pub const BTN_PRIMARY: &str = "inline-flex items-center justify-center rounded-md bg-indigo-600 px-3 py-2 \
    text-sm font-semibold text-white shadow-sm hover:bg-indigo-700 disabled:cursor-not-allowed disabled:opacity-50";
pub const BTN_SECONDARY: &str = "inline-flex items-center justify-center rounded-md border border-slate-300 \
    bg-white px-3 py-2 text-sm font-medium text-slate-700 shadow-sm hover:bg-slate-50 disabled:opacity-50";
pub const BTN_DANGER: &str = "inline-flex items-center justify-center rounded-md bg-red-600 px-3 py-2 \
    text-sm font-semibold text-white shadow-sm hover:bg-red-700 disabled:cursor-not-allowed disabled:opacity-50";
pub const BTN_LINK: &str =
    "text-sm font-medium text-indigo-600 hover:text-indigo-800 disabled:opacity-50";
pub const INPUT: &str = "block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm \
    shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 focus:ring-indigo-500/30";
pub const CARD: &str = "rounded-xl border border-slate-200 bg-white shadow-sm";
pub const TH: &str =
    "px-3 py-2 text-left text-xs font-semibold uppercase tracking-wide text-slate-500";
pub const TD: &str = "px-3 py-2 text-sm text-slate-700";

#[component]
pub fn Badge(
    #[prop(into)] text: String,
    #[prop(default = "slate")] tone: &'static str,
) -> impl IntoView {
    let class = match tone {
        "green" => "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
        "red" => "bg-red-50 text-red-700 ring-red-600/20",
        "amber" => "bg-amber-50 text-amber-800 ring-amber-600/20",
        "indigo" => "bg-indigo-50 text-indigo-700 ring-indigo-600/20",
        _ => "bg-slate-100 text-slate-600 ring-slate-500/20",
    };
    view! {
        <span class=format!("inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset {class}")>
            {text}
        </span>
    }
}

/// Copies `text` to the clipboard (after hydration) and says so for two seconds.
#[component]
pub fn CopyButton(
    #[prop(into)] text: String,
    #[prop(default = "Copy")] label: &'static str,
    #[prop(optional)] test_id: Option<&'static str>,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let on_click = move |_| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(w) = web_sys::window() {
                let _ = w.navigator().clipboard().write_text(&text);
            }
            copied.set(true);
            set_timeout(move || copied.set(false), std::time::Duration::from_secs(2));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button type="button" class=BTN_SECONDARY on:click=on_click data-testid=test_id>
            {move || if copied.get() { "Copied" } else { label }}
        </button>
    }
}

/// A dialog over the page, shown while `open` is true.
#[component]
pub fn Modal(
    open: RwSignal<bool>,
    #[prop(into)] title: String,
    children: ChildrenFn,
) -> impl IntoView {
    view! {
        <Show when=move || open.get()>
            <div class="fixed inset-0 z-40 flex items-center justify-center bg-slate-900/40 p-4" role="dialog" aria-modal="true" aria-label=title.clone()>
                <div class="w-full max-w-lg space-y-4 rounded-xl bg-white p-6 shadow-xl">
                    <h2 class="text-lg font-semibold">{title.clone()}</h2>
                    {children()}
                </div>
            </div>
        </Show>
    }
}

/// Money in nano-USD; estimates marked as such.
#[component]
pub fn Money(nanos: i64, #[prop(optional)] estimated: bool) -> impl IntoView {
    view! {
        <span class="tabular-nums">
            {crate::format::usd(nanos)}
            {estimated.then(|| view! { <span class="ml-1 text-xs text-amber-700">"(est.)"</span> })}
        </span>
    }
}

/// The message of an action's last error, as a banner.
#[component]
pub fn ErrorBanner(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || error.get().is_some()>
            <div class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-700" role="alert">
                {move || error.get()}
            </div>
        </Show>
    }
}
