//! The signed-in layout: header with navigation, organization switcher and user menu around the
//! page. Sends visitors to first-run setup or login when that is where they belong.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet, Redirect};

use crate::api::ApiError;
use crate::api::auth::{Logout, SwitchOrg, current_session};
use crate::model::{Me, SessionInfo};

/// Who is signed in, provided by [`AppLayout`] to every page inside it. Pages read it inside
/// their own `Suspense` (`session.await`).
#[derive(Clone, Copy)]
pub struct Session(pub Option<Resource<Result<SessionInfo, ApiError>>>);

impl Session {
    /// The signed-in user (once the session has loaded).
    pub async fn me(self) -> Option<Me> {
        self.0?.await.ok().and_then(|s| s.me)
    }
}

pub fn use_session() -> Session {
    use_context::<Session>().unwrap_or(Session(None))
}

/// The page frame for signed-in users. The page (`Outlet`) sits outside the `Suspense` that
/// waits for the session: nested under it, the page and its resources would be built again when
/// the session resolves, and the copies' serialized data would no longer line up with the
/// resources the browser creates while hydrating.
#[component]
pub fn AppLayout() -> impl IntoView {
    let info = Resource::new(|| (), |_| current_session());
    provide_context(Session(Some(info)));
    view! {
        <div class="min-h-full">
            <Suspense fallback=|| view! { <div class="h-14 border-b border-slate-200 bg-white"></div> }>
                {move || Suspend::new(async move {
                    match info.await {
                        Ok(SessionInfo { initialized: false, .. }) => {
                            view! { <Redirect path="/setup" /> }.into_any()
                        }
                        Ok(SessionInfo { me: None, .. }) => view! { <Redirect path="/login" /> }.into_any(),
                        Ok(SessionInfo { me: Some(me), .. }) => view! { <Header me=me /> }.into_any(),
                        Err(e) => {
                            view! {
                                <div class="p-8 text-red-700" role="alert">
                                    {e.to_string()}
                                </div>
                            }
                                .into_any()
                        }
                    }
                })}
            </Suspense>
            <main class="mx-auto max-w-7xl px-4 py-8 sm:px-6 lg:px-8">
                <Outlet />
            </main>
        </div>
    }
}

#[component]
fn Header(me: Me) -> impl IntoView {
    view! {
        <header class="border-b border-slate-200 bg-white">
            <div class="mx-auto flex h-14 max-w-7xl items-center gap-6 px-4 sm:px-6 lg:px-8">
                <A href="/" attr:class="flex items-center gap-2 font-semibold text-slate-900">
                    <img src="/favicon.svg" alt="" class="h-6 w-6" />
                    "Antix"
                </A>
                <nav class="flex gap-4 text-sm" aria-label="Main">
                    {[("/", "Endpoints"), ("/keys", "Keys"), ("/credentials", "Credentials"), ("/members", "Members")]
                        .into_iter()
                        .map(|(href, label)| view! {
                            <A href=href attr:class="text-slate-600 hover:text-slate-900 aria-[current=page]:font-semibold aria-[current=page]:text-slate-900">
                                {label}
                            </A>
                        })
                        .collect_view()}
                </nav>
                <div class="ml-auto flex items-center gap-4">
                    <OrgSwitcher me=me.clone() />
                    <UserMenu me=me />
                </div>
            </div>
        </header>
    }
}

#[component]
fn OrgSwitcher(me: Me) -> impl IntoView {
    let switch = ServerAction::<SwitchOrg>::new();
    // After a switch, reload so every page's data comes from the new organization.
    Effect::new(move |_| {
        if let Some(Ok(())) = switch.value().get() {
            let _ = window().location().reload();
        }
    });
    let current = me.current_org;
    if me.orgs.len() <= 1 {
        let label = me
            .current()
            .map(|o| format!("{} · {}", o.name, o.role.label()))
            .unwrap_or_else(|| "No organization".into());
        return view! {
            <span class="text-sm text-slate-600" data-testid="current-org">
                {label}
            </span>
        }
        .into_any();
    }
    view! {
        <label class="text-sm text-slate-600">
            <span class="sr-only">"Organization"</span>
            <select
                class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm"
                data-testid="org-switcher"
                on:change=move |ev| {
                    if let Ok(org) = event_target_value(&ev).parse() {
                        switch.dispatch(SwitchOrg { org });
                    }
                }
            >
                {me
                    .orgs
                    .into_iter()
                    .map(|o| {
                        let selected = Some(o.id) == current;
                        view! {
                            <option value=o.id.to_string() selected=selected>
                                {format!("{} · {}", o.name, o.role.label())}
                            </option>
                        }
                    })
                    .collect_view()}
            </select>
        </label>
    }
    .into_any()
}

#[component]
fn UserMenu(me: Me) -> impl IntoView {
    let open = RwSignal::new(false);
    let logout = ServerAction::<Logout>::new();
    let initial = me
        .name
        .chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    view! {
        <div class="relative">
            <button
                type="button"
                class="flex h-8 w-8 items-center justify-center rounded-full bg-indigo-600 text-sm font-semibold text-white hover:bg-indigo-700"
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                aria-label="Account menu"
                data-testid="user-menu-button"
                on:click=move |_| open.update(|o| *o = !*o)
            >
                {initial}
            </button>
            <Show when=move || open.get()>
                <div
                    class="absolute right-0 z-20 mt-2 w-64 rounded-md border border-slate-200 bg-white p-3 shadow-lg"
                    role="menu"
                    data-testid="user-menu"
                >
                    <p class="text-sm font-medium">{me.name.clone()}</p>
                    <p class="truncate text-xs text-slate-500">{me.email.clone()}</p>
                    <A href="/account" attr:class="mt-2 block text-sm text-indigo-700 hover:underline" attr:role="menuitem">
                        "Account"
                    </A>
                    <ActionForm action=logout attr:class="mt-3">
                        <button
                            type="submit"
                            role="menuitem"
                            class="w-full rounded-md bg-slate-100 px-3 py-1.5 text-left text-sm hover:bg-slate-200"
                        >
                            "Log out"
                        </button>
                    </ActionForm>
                </div>
            </Show>
        </div>
    }
}
