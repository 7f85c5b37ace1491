//! The portal's WASM entry point: hydrates the server-rendered page. Everything else lives in
//! the `app` crate.

#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
