//! Form pieces: labelled inputs that show their own field-level error, and a form-level banner.

use leptos::prelude::*;

const INPUT: &str = "block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm \
                     shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-2 \
                     focus:ring-indigo-500/30 aria-[invalid=true]:border-red-500";

/// A labelled input. `error` is the message for this field from the last submission.
#[component]
pub fn TextField(
    label: &'static str,
    name: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional, into)] hint: Option<String>,
    #[prop(optional)] autofocus: bool,
    /// A value filled in up front (from the page's URL, say).
    #[prop(optional, into)]
    value: Option<String>,
) -> impl IntoView {
    let id = format!("f-{name}");
    let err_id = format!("f-{name}-error");
    view! {
        <div class="space-y-1">
            <label for=id.clone() class="block text-sm font-medium text-slate-700">
                {label}
            </label>
            <input
                id=id
                name=name
                type=kind
                value=value
                autocomplete=autocomplete
                autofocus=autofocus
                class=INPUT
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=err_id.clone()
            />
            {hint.map(|h| view! { <p class="text-xs text-slate-500">{h}</p> })}
            <FieldError id=err_id error=error />
        </div>
    }
}

/// A password input with a show/hide toggle (works once the page is hydrated).
#[component]
pub fn PasswordField(
    label: &'static str,
    name: &'static str,
    autocomplete: &'static str,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional, into)] hint: Option<String>,
) -> impl IntoView {
    let shown = RwSignal::new(false);
    // The toggle needs JavaScript: render it only once hydrated (effects never run on the
    // server), so a page without the WASM shows no dead button.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let id = format!("f-{name}");
    let err_id = format!("f-{name}-error");
    view! {
        <div class="space-y-1">
            <label for=id.clone() class="block text-sm font-medium text-slate-700">
                {label}
            </label>
            <div class="relative">
                <input
                    id=id
                    name=name
                    type=move || if shown.get() { "text" } else { "password" }
                    autocomplete=autocomplete
                    class=format!("{INPUT} pr-16")
                    aria-invalid=move || error.get().is_some().to_string()
                    aria-describedby=err_id.clone()
                />
                <Show when=move || hydrated.get()>
                    <button
                        type="button"
                        class="absolute inset-y-0 right-0 px-3 text-xs font-medium text-indigo-600 hover:text-indigo-800"
                        aria-label=move || if shown.get() { "Hide password" } else { "Show password" }
                        on:click=move |_| shown.update(|s| *s = !*s)
                    >
                        {move || if shown.get() { "Hide" } else { "Show" }}
                    </button>
                </Show>
            </div>
            {hint.map(|h| view! { <p class="text-xs text-slate-500">{h}</p> })}
            <FieldError id=err_id error=error />
        </div>
    }
}

#[component]
pub fn FieldError(id: String, #[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    view! {
        <p id=id class="text-sm text-red-600" role="alert" data-field-error="">
            {move || error.get()}
        </p>
    }
}

/// A banner for errors that concern the whole form.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || error.get().is_some()>
            <div
                class="rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-700"
                role="alert"
                data-form-error=""
            >
                {move || error.get()}
            </div>
        </Show>
    }
}
