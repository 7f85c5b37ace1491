//! Members of the organization: roles, removal, invitations (links), and the organization's
//! limits.

use leptos::prelude::*;
use leptos_meta::Title;
use uuid::Uuid;

use crate::api::error::{field_error, form_error};
use crate::api::members::{
    InviteMember, RemoveMember, RevokeInvite, SetRole, UpdateOrgSettings, list_members,
};
use crate::api::tokens::{CreateApiToken, RevokeApiToken, list_api_tokens};
use crate::components::ui::{
    BTN_LINK, BTN_PRIMARY, Badge, CARD, CopyButton, ErrorBanner, INPUT, TD, TH,
};
use crate::components::{FieldError, FormError};
use crate::format;
use crate::model::{MembersPage as Page, Role};

#[component]
pub fn MembersPage() -> impl IntoView {
    let invite = ServerAction::<InviteMember>::new();
    let set_role = ServerAction::<SetRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let revoke = ServerAction::<RevokeInvite>::new();
    let settings = ServerAction::<UpdateOrgSettings>::new();
    let data = Resource::new(
        move || {
            (
                invite.version().get(),
                set_role.version().get(),
                remove.version().get(),
                revoke.version().get(),
                settings.version().get(),
            )
        },
        |_| list_members(),
    );
    view! {
        <Title text="Members" />
        <div class="space-y-6">
            <h1 class="text-2xl font-semibold">"Members"</h1>
            <ErrorBanner error=Signal::derive(move || {
                set_role.value().get().and_then(|r| r.err())
                    .or_else(|| remove.value().get().and_then(|r| r.err()))
                    .map(|e| e.to_string())
            }) />
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! {
                            <MemberTable page=page.clone() set_role=set_role remove=remove />
                            {page.is_admin.then(|| view! {
                                <div class="grid gap-6 lg:grid-cols-2">
                                    <InviteCard invite=invite page=page.clone() revoke=revoke />
                                    <OrgSettings page=page.clone() settings=settings />
                                </div>
                                <ApiTokens />
                                <crate::pages::alerts::BudgetAlerts />
                            })}
                        }.into_any(),
                        Err(e) => view! { <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </div>
    }
}

#[component]
fn MemberTable(
    page: Page,
    set_role: ServerAction<SetRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    view! {
        <div class=format!("{CARD} overflow-x-auto")>
            <table class="min-w-full divide-y divide-slate-200" data-testid="member-table">
                <thead class="bg-slate-50">
                    <tr>
                        <th class=TH>"Name"</th>
                        <th class=TH>"E-mail"</th>
                        <th class=TH>"Role"</th>
                        <th class=TH>"Joined"</th>
                        <th class=TH></th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {page.members.into_iter().map(|m| {
                        let id: Uuid = m.user_id;
                        let role = m.role;
                        view! {
                            <tr data-testid="member-row" data-email=m.email.clone()>
                                <td class=TD>{m.name.clone()} {m.is_me.then(|| view! { <span class="ml-1 text-xs text-slate-400">"(you)"</span> })}</td>
                                <td class=TD>{m.email.clone()}</td>
                                <td class=TD>
                                    {if page.is_admin {
                                        view! {
                                            <select
                                                class="rounded-md border border-slate-300 px-2 py-1 text-sm"
                                                aria-label=format!("Role of {}", m.email)
                                                data-testid="role-select"
                                                on:change=move |ev| {
                                                    set_role.dispatch(SetRole { user_id: id, role: event_target_value(&ev) });
                                                }
                                            >
                                                <option value="admin" selected=role == Role::Admin>"Admin"</option>
                                                <option value="member" selected=role == Role::Member>"Member"</option>
                                            </select>
                                        }.into_any()
                                    } else {
                                        view! { <Badge text=role.label() /> }.into_any()
                                    }}
                                </td>
                                <td class=TD>{format::date(m.joined_at)}</td>
                                <td class=format!("{TD} text-right")>
                                    {(page.is_admin && !m.is_me).then(|| view! {
                                        <button
                                            type="button"
                                            class=format!("{BTN_LINK} text-red-600")
                                            data-testid="remove-member"
                                            on:click=move |_| { remove.dispatch(RemoveMember { user_id: id }); }
                                        >
                                            "Remove"
                                        </button>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn InviteCard(
    invite: ServerAction<InviteMember>,
    page: Page,
    revoke: ServerAction<RevokeInvite>,
) -> impl IntoView {
    let result = invite.value();
    view! {
        <section class=format!("{CARD} space-y-4 p-5")>
            <h2 class="font-semibold">"Invite someone"</h2>
            <ActionForm action=invite attr:class="space-y-3" attr:novalidate=true attr:data-testid="invite-form">
                <div class="space-y-1">
                    <label for="f-invite-email" class="block text-sm font-medium text-slate-700">"E-mail"</label>
                    <input id="f-invite-email" name="email" type="email" class=INPUT />
                    <FieldError id="f-invite-email-error".into() error=Signal::derive(move || field_error(&result.get(), "email")) />
                </div>
                <div class="space-y-1">
                    <label for="f-invite-role" class="block text-sm font-medium text-slate-700">"Role"</label>
                    <select id="f-invite-role" name="role" class=INPUT>
                        <option value="member">"Member"</option>
                        <option value="admin">"Admin"</option>
                    </select>
                </div>
                <button type="submit" class=BTN_PRIMARY>"Create invitation link"</button>
            </ActionForm>
            <FormError error=Signal::derive(move || form_error(&result.get())) />
            {move || result.get().and_then(Result::ok).map(|link| view! {
                <div class="space-y-2 rounded-md bg-slate-50 p-3" data-testid="invite-link">
                    <p class="text-sm">{format!("Send this link to {}. It works once, for 7 days:", link.email)}</p>
                    <code class="block break-all text-xs" data-testid="invite-url">{link.url.clone()}</code>
                    <CopyButton text=link.url.clone() label="Copy link" />
                </div>
            })}
            {(!page.invites.is_empty()).then(|| view! {
                <div>
                    <h3 class="text-sm font-medium text-slate-700">"Pending invitations"</h3>
                    <ul class="mt-2 divide-y divide-slate-100 text-sm">
                        {page.invites.iter().map(|i| {
                            let id = i.id;
                            view! {
                                <li class="flex items-center justify-between py-1">
                                    <span>{format!("{} · {} · until {}", i.email, i.role.label(), format::date(i.expires_at))}</span>
                                    <button type="button" class=BTN_LINK on:click=move |_| { revoke.dispatch(RevokeInvite { id }); }>"Revoke"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </div>
            })}
        </section>
    }
}

#[component]
fn OrgSettings(page: Page, settings: ServerAction<UpdateOrgSettings>) -> impl IntoView {
    let result = settings.value();
    let instance = match page.instance_retention_days {
        0 => "Empty: the server's default (traces kept forever).".to_owned(),
        n => format!("Empty: the server's default ({n} days)."),
    };
    view! {
        <section class=format!("{CARD} space-y-4 p-5")>
            <h2 class="font-semibold">{format!("{} settings", page.org_name)}</h2>
            <ActionForm action=settings attr:class="space-y-3" attr:novalidate=true attr:data-testid="org-settings-form">
                <div class="space-y-1">
                    <label for="f-max" class="block text-sm font-medium text-slate-700">"Personal endpoints per member (default 10)"</label>
                    <input id="f-max" name="max_personal_endpoints" class=INPUT value=page.max_personal_endpoints.to_string() />
                    <FieldError id="f-max-error".into() error=Signal::derive(move || field_error(&result.get(), "max_personal_endpoints")) />
                </div>
                <div class="space-y-1">
                    <label for="f-retention" class="block text-sm font-medium text-slate-700">"Trace retention in days (0: forever; an endpoint's own setting wins)"</label>
                    <input id="f-retention" name="trace_retention_days" inputmode="numeric" class=INPUT placeholder="server default" value=page.trace_retention_days.map(|d| d.to_string()).unwrap_or_default() data-testid="org-retention" />
                    <p class="text-xs text-slate-500">{instance}</p>
                    <FieldError id="f-retention-error".into() error=Signal::derive(move || field_error(&result.get(), "trace_retention_days")) />
                </div>
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" name="members_can_create_keys" value="on" checked=page.members_can_create_keys />
                    "Members may issue virtual keys for their own endpoints"
                </label>
                <button type="submit" class=BTN_PRIMARY>"Save settings"</button>
                {move || matches!(result.get(), Some(Ok(()))).then(|| view! { <span class="ml-3 text-sm text-emerald-700">"Saved."</span> })}
            </ActionForm>
        </section>
    }
}

/// Organization API tokens for the management REST API (`/api/v1`): issue (shown once), list,
/// revoke. Admins only.
#[component]
fn ApiTokens() -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_api_tokens(),
    );
    let result = create.value();
    view! {
        <section class=format!("{CARD} space-y-4 p-5") data-testid="api-tokens">
            <div>
                <h2 class="font-semibold">"API tokens"</h2>
                <p class="text-sm text-slate-600">
                    "For scripts and infrastructure-as-code: the management API at "
                    <a class="underline" href="/api/v1/docs" rel="external">"/api/v1"</a>
                    " with "<code>"Authorization: Bearer …"</code>". A token acts for this organization with your rights as an admin, read-only unless you allow writes, until it is revoked or you stop being an admin."
                </p>
            </div>
            <ActionForm action=create attr:class="flex flex-wrap items-end gap-3" attr:novalidate=true attr:data-testid="api-token-form">
                <div class="space-y-1">
                    <label for="f-token-name" class="block text-sm font-medium text-slate-700">"Name"</label>
                    <input id="f-token-name" name="name" class=INPUT placeholder="terraform" />
                    <FieldError id="f-token-name-error".into() error=Signal::derive(move || field_error(&result.get(), "name")) />
                </div>
                <div class="space-y-1">
                    <label for="f-token-access" class="block text-sm font-medium text-slate-700">"Access"</label>
                    <select id="f-token-access" name="access" class=INPUT>
                        <option value="read">"Read-only"</option>
                        <option value="write">"Read and write"</option>
                    </select>
                </div>
                <button type="submit" class=BTN_PRIMARY data-testid="create-api-token">"Create token"</button>
            </ActionForm>
            <FormError error=Signal::derive(move || form_error(&result.get())) />
            {move || result.get().and_then(Result::ok).map(|t| view! {
                <div class="space-y-2 rounded-md bg-amber-50 p-3" data-testid="api-token-created">
                    <p class="text-sm">{format!("Copy {} now: it is shown only this once.", t.name)}</p>
                    <code class="block break-all text-xs" data-testid="api-token-secret">{t.secret.clone()}</code>
                    <CopyButton text=t.secret.clone() label="Copy token" />
                </div>
            })}
            <ErrorBanner error=Signal::derive(move || revoke.value().get().and_then(|r| r.err()).map(|e| e.to_string())) />
            <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="text-sm text-slate-500">"No API tokens yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="min-w-full divide-y divide-slate-200" data-testid="api-token-table">
                                <thead class="bg-slate-50">
                                    <tr>
                                        <th class=TH>"Name"</th>
                                        <th class=TH>"Token"</th>
                                        <th class=TH>"Access"</th>
                                        <th class=TH>"Created"</th>
                                        <th class=TH>"Last used"</th>
                                        <th class=TH></th>
                                    </tr>
                                </thead>
                                <tbody class="divide-y divide-slate-100">
                                    {list.into_iter().map(|t| {
                                        let id = t.id;
                                        view! {
                                            <tr data-testid="api-token-row" data-name=t.name.clone()>
                                                <td class=TD>{t.name.clone()}</td>
                                                <td class=TD><code class="text-xs">{t.display.clone()}</code></td>
                                                <td class=TD><Badge text=if t.can_write { "read-write" } else { "read-only" } /></td>
                                                <td class=TD>{format!("{} by {}", format::date(t.created_at), t.created_by)}</td>
                                                <td class=TD>{t.last_used_at.map(format::datetime).unwrap_or_else(|| "never".into())}</td>
                                                <td class=format!("{TD} text-right")>
                                                    {match t.revoked_at {
                                                        Some(at) => view! { <span class="text-sm text-slate-500" data-testid="api-token-revoked">{format!("revoked {}", format::date(at))}</span> }.into_any(),
                                                        None => view! {
                                                            <button type="button" class=format!("{BTN_LINK} text-red-600") data-testid="revoke-api-token"
                                                                on:click=move |_| { revoke.dispatch(RevokeApiToken { id }); }>
                                                                "Revoke"
                                                            </button>
                                                        }.into_any(),
                                                    }}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(e) => view! { <p class="text-red-700" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
