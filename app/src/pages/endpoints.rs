//! The Endpoints tab: the endpoints the user may see in the current organization, and the card
//! that creates new ones.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::endpoints::{CreateEndpoint, list_endpoints};
use crate::api::error::{field_error, form_error};
use crate::components::ui::{BTN_PRIMARY, Badge, CARD, INPUT, Money, TD, TH};
use crate::components::{FieldError, FormError, use_session};
use crate::format;
use crate::model::{EndpointsPage as Page, Role, Scope};

#[component]
pub fn EndpointsPage() -> impl IntoView {
    let create = ServerAction::<CreateEndpoint>::new();
    let data = Resource::new(move || create.version().get(), |_| list_endpoints());
    let session = use_session();
    view! {
        <Title text="Endpoints" />
        <div class="space-y-6">
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let me = session.me().await;
                    let name = me.as_ref().map(|m| m.name.clone()).unwrap_or_default();
                    let header = view! {
                        <div>
                            <p class="text-sm text-slate-500" data-testid="welcome">{format!("Welcome, {name}")}</p>
                            <h1 class="text-2xl font-semibold">"Endpoints"</h1>
                        </div>
                    };
                    match data.await {
                        Ok(page) => view! {
                            {header}
                            <CreateEndpointCard page=page.clone() create=create me=me />
                            <EndpointTable page=page />
                        }
                            .into_any(),
                        Err(e) => view! { {header} <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn CreateEndpointCard(
    page: Page,
    create: ServerAction<CreateEndpoint>,
    me: Option<crate::model::Me>,
) -> impl IntoView {
    let orgs = me.map(|m| m.orgs).unwrap_or_default();
    let selected_org = RwSignal::new(page.org_id);
    let is_admin_in = {
        let orgs = orgs.clone();
        move |id: uuid::Uuid| orgs.iter().any(|o| o.id == id && o.role == Role::Admin)
    };
    let can_share = Signal::derive(move || is_admin_in(selected_org.get()));
    let result = create.value();
    let err = move |f: &'static str| Signal::derive(move || field_error(&result.get(), f));
    let used = format!(
        "You have {} of {} personal endpoints in {}.",
        page.personal_count, page.personal_limit, page.org_name
    );
    view! {
        <section class=format!("{CARD} p-5") aria-labelledby="create-endpoint">
            <h2 id="create-endpoint" class="text-base font-semibold">"Create Endpoint"</h2>
            <ActionForm action=create attr:class="mt-4 grid gap-4 md:grid-cols-[1fr_1fr_2fr_auto] md:items-start" attr:novalidate=true attr:data-testid="create-endpoint-form">
                <div class="space-y-1">
                    <label for="f-org" class="block text-sm font-medium text-slate-700">"Organization"</label>
                    <select
                        id="f-org"
                        name="org"
                        class=INPUT
                        on:change=move |ev| {
                            if let Ok(id) = event_target_value(&ev).parse() {
                                selected_org.set(id);
                            }
                        }
                    >
                        {orgs
                            .iter()
                            .map(|o| {
                                view! {
                                    <option value=o.id.to_string() selected=o.id == page.org_id>
                                        {o.name.clone()}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </div>
                <fieldset class="space-y-1">
                    <legend class="block text-sm font-medium text-slate-700">"Scope"</legend>
                    <label class="flex items-center gap-2 text-sm">
                        <input type="radio" name="scope" value="personal" checked=true />
                        "Personal"
                    </label>
                    <label class="flex items-center gap-2 text-sm" class:text-slate-400=move || !can_share.get()>
                        <input type="radio" name="scope" value="org_shared" disabled=move || !can_share.get() data-testid="scope-org-shared" />
                        "Org-shared"
                    </label>
                    <Show when=move || !can_share.get()>
                        <p class="text-xs text-slate-500" data-testid="org-shared-reason">
                            "Only organization admins can create org-shared endpoints."
                        </p>
                    </Show>
                    <FieldError id="f-scope-error".into() error=err("scope") />
                </fieldset>
                <div class="space-y-1">
                    <label for="f-name" class="block text-sm font-medium text-slate-700">"Display Name"</label>
                    <input id="f-name" name="name" class=INPUT placeholder="e.g. Support bot (staging)" />
                    <FieldError id="f-name-error".into() error=err("name") />
                    <p class="text-xs text-slate-500">{used}</p>
                </div>
                <div class="md:pt-6">
                    <button type="submit" class=BTN_PRIMARY disabled=move || create.pending().get()>
                        "Create"
                    </button>
                </div>
            </ActionForm>
            <div class="mt-3">
                <FormError error=Signal::derive(move || form_error(&result.get())) />
            </div>
        </section>
    }
}

#[component]
fn EndpointTable(page: Page) -> impl IntoView {
    if page.endpoints.is_empty() {
        return view! {
            <p class=format!("{CARD} p-6 text-sm text-slate-500") data-testid="no-endpoints">
                "No endpoints yet. Create one above and paste its URL into your SDK."
            </p>
        }
        .into_any();
    }
    view! {
        <div class=format!("{CARD} overflow-x-auto")>
            <table class="min-w-full divide-y divide-slate-200" data-testid="endpoint-table">
                <thead class="bg-slate-50">
                    <tr>
                        <th class=TH>"Name"</th>
                        <th class=TH>"Scope"</th>
                        <th class=TH>"Owner"</th>
                        <th class=TH>"Created"</th>
                        <th class=format!("{TH} text-right")>"Requests (30 d)"</th>
                        <th class=format!("{TH} text-right")>"Cost (30 d)"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {page
                        .endpoints
                        .into_iter()
                        .map(|e| {
                            let href = format!("/endpoints/{}", e.id);
                            view! {
                                <tr class:opacity-60=e.archived_at.is_some() data-testid="endpoint-row">
                                    <td class=TD>
                                        <A href=href attr:class="font-medium text-indigo-700 hover:underline">
                                            {e.name.clone()}
                                        </A>
                                        {e.archived_at.map(|_| view! { <span class="ml-2"><Badge text="Archived" tone="red" /></span> })}
                                    </td>
                                    <td class=TD>
                                        <Badge
                                            text=e.scope.label()
                                            tone=if e.scope == Scope::OrgShared { "indigo" } else { "slate" }
                                        />
                                    </td>
                                    <td class=TD>{e.owner_name.clone()}</td>
                                    <td class=TD>{format::date(e.created_at)}</td>
                                    <td class=format!("{TD} text-right tabular-nums")>{e.requests_30d}</td>
                                    <td class=format!("{TD} text-right")>
                                        <Money nanos=e.cost_billed_30d_nanos />
                                        {(e.cost_estimated_30d_nanos > 0)
                                            .then(|| view! { <div class="text-xs text-slate-500"><Money nanos=e.cost_estimated_30d_nanos estimated=true /></div> })}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
        .into_any()
}
