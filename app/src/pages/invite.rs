//! Accepting an invitation: new people create their account here; existing users join after
//! logging in as the invited address.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::error::{field_error, form_error};
use crate::api::members::{AcceptInvite, get_invite};
use crate::components::ui::BTN_PRIMARY;
use crate::components::{FormError, PasswordField, TextField};
use crate::model::InviteState;

#[component]
pub fn InvitePage() -> impl IntoView {
    let params = use_params_map();
    let token = Signal::derive(move || params.read().get("token").unwrap_or_default());
    let info = Resource::new(move || token.get(), get_invite);
    let accept = ServerAction::<AcceptInvite>::new();
    let result = accept.value();
    let err = move |f: &'static str| Signal::derive(move || field_error(&result.get(), f));
    view! {
        <Title text="Invitation" />
        <div class="flex min-h-full items-center justify-center px-4 py-12">
            <div class="w-full max-w-md space-y-6 rounded-xl border border-slate-200 bg-white p-8 shadow-sm">
                <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match info.await {
                            Ok(i) if i.state == InviteState::Valid => {
                                let intro = format!("Join {} as {}.", i.org_name, i.role.label());
                                let body = if i.account_exists {
                                    if i.logged_in_as.as_deref() == Some(i.email.as_str()) {
                                        view! {
                                            <p class="text-sm text-slate-600">{format!("You are logged in as {}.", i.email)}</p>
                                            <ActionForm action=accept attr:class="space-y-4">
                                                <input type="hidden" name="token" value=token.get_untracked() />
                                                <input type="hidden" name="name" value="" />
                                                <input type="hidden" name="password" value="" />
                                                <button type="submit" class=BTN_PRIMARY>"Join"</button>
                                            </ActionForm>
                                        }.into_any()
                                    } else {
                                        view! {
                                            <p class="text-sm text-slate-600">
                                                {format!("{} already has an account. Log in as that address, then open this link again.", i.email)}
                                            </p>
                                            <A href="/login" attr:class=BTN_PRIMARY>"Log in"</A>
                                        }.into_any()
                                    }
                                } else {
                                    view! {
                                        <ActionForm action=accept attr:class="space-y-4" attr:novalidate=true attr:data-testid="accept-form">
                                            <input type="hidden" name="token" value=token.get_untracked() />
                                            <p class="text-sm text-slate-600">{format!("Create your account for {}.", i.email)}</p>
                                            <TextField label="Your name" name="name" autocomplete="name" error=err("name") />
                                            <PasswordField label="Password" name="password" autocomplete="new-password" error=err("password") hint="At least 10 characters." />
                                            <button type="submit" class=format!("{BTN_PRIMARY} w-full")>"Create account and join"</button>
                                        </ActionForm>
                                    }.into_any()
                                };
                                view! {
                                    <h1 class="text-xl font-semibold">"You are invited"</h1>
                                    <p class="text-sm text-slate-700" data-testid="invite-intro">{intro}</p>
                                    {body}
                                    <FormError error=Signal::derive(move || form_error(&result.get())) />
                                }.into_any()
                            }
                            Ok(i) => {
                                let why = match i.state {
                                    InviteState::Used => "This invitation has already been used.",
                                    InviteState::Expired => "This invitation has expired. Ask for a new one.",
                                    _ => "This invitation link is not valid.",
                                };
                                view! { <h1 class="text-xl font-semibold">"Invitation"</h1><p class="text-sm text-slate-600" data-testid="invite-invalid">{why}</p> }.into_any()
                            }
                            Err(e) => view! { <p class="text-red-700">{e.to_string()}</p> }.into_any(),
                        }
                    })}
                </Suspense>
            </div>
        </div>
    }
}
