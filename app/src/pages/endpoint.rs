//! One endpoint: its header (name, scope, the base URL for each SDK with copy buttons and
//! snippets, and the reminder that the URL is a secret) above four tabs.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Outlet};
use leptos_router::hooks::use_params_map;
use uuid::Uuid;

use crate::api::endpoints::get_endpoint;
use crate::components::ui::{Badge, CARD, CopyButton};
use crate::format;
use crate::model::{EndpointDetail, Scope};

mod activity;
mod drawer;
mod nav;
mod overview;
mod settings;
mod traces;

pub use activity::ActivityTab;
pub use overview::OverviewTab;
pub use settings::SettingsTab;
pub use traces::TracesTab;

/// The endpoint shown, for the tabs (provided by [`EndpointLayout`]); tabs that need more than
/// its id read it inside their own `Suspense`.
#[derive(Clone, Copy)]
pub struct CurrentEndpoint(pub Resource<Result<EndpointDetail, crate::api::ApiError>>);

pub fn use_endpoint() -> Option<CurrentEndpoint> {
    use_context::<CurrentEndpoint>()
}

/// The id in the URL.
pub fn endpoint_id() -> Signal<Option<Uuid>> {
    let params = use_params_map();
    Signal::derive(move || params.read().get("id").and_then(|s| s.parse().ok()))
}

#[component]
pub fn EndpointLayout() -> impl IntoView {
    let id = endpoint_id();
    let data = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_endpoint(id).await,
                None => Err(crate::api::ApiError::NotFound),
            }
        },
    );
    provide_context(CurrentEndpoint(data));
    // The tab (`Outlet`) is outside this `Suspense`, for the reason given on `AppLayout`; tabs
    // load their own data by the id in the URL and show nothing for an endpoint not found.
    view! {
        <div class="space-y-6">
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(e) => view! {
                            <Title text=e.name.clone() />
                            <Header e=e.clone() />
                            <Tabs id=e.id has_sessions=e.has_sessions />
                        }
                            .into_any(),
                        Err(crate::api::ApiError::NotFound) => view! {
                            <Title text="Not found" />
                            <p class="text-slate-600" data-testid="endpoint-not-found">"No such endpoint (or it is not yours to see)."</p>
                        }
                            .into_any(),
                        Err(e) => view! { <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
            <Outlet />
        </div>
    }
}

#[component]
fn Header(e: EndpointDetail) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let overview_path = format!("/endpoints/{}", e.id);
    let on_overview = move || location.pathname.get().trim_end_matches('/') == overview_path;
    let rows = [
        (
            "OpenAI / OpenAI-compatible",
            e.urls.openai.clone(),
            format!(
                "OpenAI(base_url=\"{}\", api_key=\"sk-vk-…\")",
                e.urls.openai
            ),
            "openai",
        ),
        (
            "Anthropic / Claude Code",
            e.urls.anthropic.clone(),
            format!(
                "Anthropic(base_url=\"{0}\", api_key=\"sk-vk-…\")  ·  ANTHROPIC_BASE_URL={0} claude",
                e.urls.anthropic
            ),
            "anthropic",
        ),
        (
            "Gemini",
            e.urls.gemini.clone(),
            format!(
                "genai.Client(api_key=\"sk-vk-…\", http_options={{\"base_url\": \"{}\"}})",
                e.urls.gemini
            ),
            "gemini",
        ),
        (
            "Universal (multi)",
            e.urls.multi.clone(),
            format!(
                "OpenAI(base_url=\"{}\", api_key=…) with any model; or header X-Antix-Provider",
                e.urls.multi
            ),
            "multi",
        ),
    ];
    view! {
        <div class="space-y-4">
            <div class="flex flex-wrap items-center gap-3">
                <A href="/" attr:class="text-sm text-slate-500 hover:text-slate-800">"Endpoints /"</A>
                <h1 class="text-2xl font-semibold" data-testid="endpoint-name">{e.name.clone()}</h1>
                <Badge text=e.scope.label() tone=if e.scope == Scope::OrgShared { "indigo" } else { "slate" } />
                {e.archived_at.map(|t| view! { <Badge text=format!("Archived {}", format::date(t)) tone="red" /> })}
            </div>
            <p class="text-sm text-slate-500">
                {format!("{} · owner {} · created {}", e.org_name, e.owner_name, format::date(e.created_at))}
            </p>
            // Open on the Overview; folded on the other tabs, where the data is what matters.
            <details class=format!("{CARD} overflow-hidden") aria-label="Provider base URLs" open=on_overview data-testid="base-urls-card">
                <summary class="cursor-pointer px-4 py-2 text-sm font-medium text-slate-700">"Base URLs for SDKs"</summary>
                <div class="border-y border-amber-200 bg-amber-50 px-4 py-2 text-sm text-amber-900" role="note">
                    "These URLs are secret: anyone who has one can send traffic that shows up here. Share them like API keys."
                </div>
                <table class="min-w-full divide-y divide-slate-100" data-testid="base-urls">
                    <tbody>
                        {rows
                            .into_iter()
                            .map(|(label, url, snippet, key)| {
                                view! {
                                    <tr data-testid=format!("url-{key}")>
                                        <td class="w-56 px-4 py-3 align-top text-sm font-medium text-slate-700">{label}</td>
                                        <td class="px-4 py-3">
                                            <code class="block break-all rounded bg-slate-100 px-2 py-1 text-xs" data-testid="url">{url.clone()}</code>
                                            <code class="mt-1 block break-all text-xs text-slate-500">{snippet}</code>
                                        </td>
                                        <td class="px-4 py-3 text-right align-top">
                                            <CopyButton text=url test_id="copy-url" />
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </details>
        </div>
    }
}

#[component]
fn Tabs(id: Uuid, has_sessions: bool) -> impl IntoView {
    let base = format!("/endpoints/{id}");
    let tab = |href: String, label: &'static str| {
        view! {
            <A
                href=href
                exact=true
                attr:class="border-b-2 border-transparent px-1 pb-2 text-sm font-medium text-slate-500 hover:text-slate-800 aria-[current=page]:border-indigo-600 aria-[current=page]:text-indigo-700"
            >
                {label}
            </A>
        }
    };
    view! {
        <nav class="flex gap-6 border-b border-slate-200" aria-label="Endpoint">
            {tab(base.clone(), "Overview")}
            {tab(format!("{base}/traces"), "Traces")}
            // Only endpoints with agent traffic (/v1/messages, /v1/responses) have sessions.
            {has_sessions.then(|| tab(format!("{base}/activity"), "Activity"))}
            {tab(format!("{base}/settings"), "Settings")}
        </nav>
    }
}
