//! # Antix portal
//!
//! Leptos components, pages and server functions, shared by the server (feature `ssr`, renders
//! pages and runs server functions) and the browser (feature `hydrate`, compiled to WASM by the
//! `frontend` crate). Server-only code sits behind `ssr`; the wire types in [`model`] are the only
//! data that crosses to the browser.
//!
//! Module map:
//! - [`api`]: server functions, one module per resource, and the portal's error type.
//! - [`model`]: wire types (DTOs).
//! - [`pages`]: one component per page, named `*Page`.
//! - [`components`]: layout and reusable pieces.

#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

pub mod api;
pub mod components;
pub mod format;
pub mod model;
pub mod pages;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_security_headers();
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full bg-slate-50">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                <link rel="stylesheet" id="leptos" href=stylesheet_href(&options) />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="h-full text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

/// The stylesheet's address. In the shell, not in [`App`]: with content-hashed asset names
/// (`antix.<hash>.css`, see `hash-files` in Cargo.toml) only the server knows the name, from the
/// hash file the build wrote, which leptos also reads for the script and WASM names.
fn stylesheet_href(options: &LeptosOptions) -> String {
    let output = &options.output_name;
    #[cfg(feature = "ssr")]
    if options.hash_files
        // Where leptos looks: beside the executable, unless the name is absolute.
        && let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
        && let Ok(hashes) = std::fs::read_to_string(dir.join(options.hash_file.as_ref()))
        && let Some(hash) = hashes
            .lines()
            .find_map(|l| l.trim().strip_prefix("css:"))
            .map(str::trim)
            .filter(|h| !h.is_empty())
    {
        return format!("/{}/{output}.{hash}.css", options.site_pkg_dir);
    }
    format!("/{}/{output}.css", options.site_pkg_dir)
}

/// Content-Security-Policy with a per-response nonce for the hydration script: no inline script
/// runs without it, so markup smuggled in through a prompt or model output cannot execute even
/// if it ever escaped Leptos' text escaping. Plus the usual framing and sniffing headers.
#[cfg(feature = "ssr")]
fn set_security_headers() {
    use http::HeaderValue;
    use http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
    let Some(res) = use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let nonce = leptos::nonce::use_nonce()
        .map(|n| format!(" 'nonce-{}'", &*n))
        .unwrap_or_default();
    // `cargo leptos watch` reloads pages over a websocket on the reload port.
    let reload = if std::env::var_os("LEPTOS_WATCH").is_some() {
        " ws: wss:"
    } else {
        ""
    };
    let csp = format!(
        "default-src 'self'; script-src 'self'{nonce} 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'{reload}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.insert_header(CONTENT_SECURITY_POLICY, v);
    }
    res.insert_header(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res.insert_header(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Antix".into() } else { format!("{t} · Antix") } />
        <Router>
            <Routes fallback=pages::NotFoundPage>
                <Route path=path!("/setup") view=pages::SetupPage ssr=SsrMode::Async />
                <Route path=path!("/login") view=pages::LoginPage ssr=SsrMode::Async />
                <Route path=path!("/invite/:token") view=pages::InvitePage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=components::AppLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=pages::EndpointsPage />
                    <Route path=path!("endpoints") view=pages::EndpointsPage />
                    <ParentRoute path=path!("endpoints/:id") view=pages::EndpointLayout>
                        <Route path=path!("") view=pages::OverviewTab />
                        <Route path=path!("traces") view=pages::TracesTab />
                        <Route path=path!("activity") view=pages::ActivityTab />
                        <Route path=path!("settings") view=pages::SettingsTab />
                    </ParentRoute>
                    <Route path=path!("keys") view=pages::KeysPage />
                    <Route path=path!("credentials") view=pages::CredentialsPage />
                    <Route path=path!("members") view=pages::MembersPage />
                    <Route path=path!("account") view=pages::AccountPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
