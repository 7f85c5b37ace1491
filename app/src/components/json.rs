//! A JSON viewer: syntax-highlighted, foldable (native `<details>`, so folding works before
//! hydration too), keys in their original order. Everything is rendered as text nodes: a
//! prompt or a model answer containing markup shows as characters, never as HTML.

use leptos::prelude::*;
use serde_json::Value;

/// Objects and arrays deeper than this start folded.
const OPEN_DEPTH: usize = 3;
/// Longer strings start shortened, with a control to show all of it.
const LONG_STRING: usize = 600;

const KEY: &str = "text-indigo-700";
const STRING: &str = "text-emerald-700";
const NUMBER: &str = "text-amber-700";
const LITERAL: &str = "text-fuchsia-700";
const PUNCT: &str = "text-slate-400";

/// Shows `text` as a JSON tree when it parses, else as plain preformatted text.
#[component]
pub fn JsonView(
    #[prop(into)] text: String,
    #[prop(optional)] test_id: Option<&'static str>,
) -> impl IntoView {
    let body = match serde_json::from_str::<Value>(&text) {
        Ok(v) => view! {
            <div class="font-mono text-xs leading-5" data-json="tree">{node(None, &v, 0, true)}</div>
        }
        .into_any(),
        Err(_) => view! {
            <pre class="whitespace-pre-wrap break-words font-mono text-xs leading-5 text-slate-800" data-json="raw">{text}</pre>
        }
        .into_any(),
    };
    view! { <div class="overflow-x-auto" data-testid=test_id>{body}</div> }
}

fn key_label(key: Option<&str>) -> AnyView {
    match key {
        Some(k) => view! {
            <span class=KEY>{format!("\"{k}\"")}</span>
            <span class=PUNCT>": "</span>
        }
        .into_any(),
        None => ().into_any(),
    }
}

fn comma(last: bool) -> &'static str {
    if last { "" } else { "," }
}

fn node(key: Option<&str>, v: &Value, depth: usize, last: bool) -> AnyView {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let n = map.len();
            let children = map
                .iter()
                .enumerate()
                .map(|(i, (k, v))| node(Some(k), v, depth + 1, i + 1 == n))
                .collect_view();
            container(
                key,
                depth,
                last,
                ("{", "}"),
                crate::format::count(n as i64, "key", "keys"),
                children.into_any(),
            )
        }
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            let children = items
                .iter()
                .enumerate()
                .map(|(i, v)| node(None, v, depth + 1, i + 1 == n))
                .collect_view();
            let what = crate::format::count(n as i64, "item", "items");
            container(key, depth, last, ("[", "]"), what, children.into_any())
        }
        leaf => view! {
            <div class="pl-4 -indent-4 break-words">
                {key_label(key)}
                {scalar(leaf)}
                <span class=PUNCT>{comma(last)}</span>
            </div>
        }
        .into_any(),
    }
}

fn container(
    key: Option<&str>,
    depth: usize,
    last: bool,
    (open, close): (&'static str, &'static str),
    summary: String,
    children: AnyView,
) -> AnyView {
    view! {
        <details open=depth < OPEN_DEPTH class="fold">
            <summary class="cursor-pointer list-none select-none hover:bg-slate-100">
                <span class="chevron w-3 text-slate-400">"›"</span>
                {key_label(key)}
                <span class=PUNCT>{open}</span>
                <span class="when-closed text-slate-400">{format!(" {summary} {close}{}", comma(last))}</span>
            </summary>
            <div class="fold-body ml-1.5 border-l border-slate-200 pl-3">{children}</div>
            <div class="fold-body pl-3">
                <span class=PUNCT>{close}{comma(last)}</span>
            </div>
        </details>
    }
    .into_any()
}

fn scalar(v: &Value) -> AnyView {
    match v {
        Value::String(s) if s == "<redacted>" => view! {
            <span class="rounded bg-slate-200 px-1 text-slate-600" title="Removed before storage">"<redacted>"</span>
        }
        .into_any(),
        Value::String(s) => long_string(s),
        Value::Number(n) => view! { <span class=NUMBER>{n.to_string()}</span> }.into_any(),
        Value::Bool(b) => view! { <span class=LITERAL>{b.to_string()}</span> }.into_any(),
        Value::Null => view! { <span class=LITERAL>"null"</span> }.into_any(),
        Value::Object(_) => view! { <span class=PUNCT>"{}"</span> }.into_any(),
        Value::Array(_) => view! { <span class=PUNCT>"[]"</span> }.into_any(),
    }
}

/// A string value, unescaped so multi-line prompts read as written. Long ones start folded.
fn long_string(s: &str) -> AnyView {
    let quoted = |t: String| view! { <span class=format!("{STRING} whitespace-pre-wrap")>"\""{t}"\""</span> };
    if s.chars().count() <= LONG_STRING {
        return quoted(s.to_owned()).into_any();
    }
    let head: String = s.chars().take(LONG_STRING).collect();
    let n = s.chars().count();
    view! {
        <details class="longstr inline">
            <summary class="inline cursor-pointer list-none">
                <span class=format!("head {STRING} whitespace-pre-wrap")>"\""{head}"…"</span>
                <span class="label-closed ml-1 rounded bg-slate-100 px-1 text-[11px] text-indigo-700">
                    {format!("show all {n} characters")}
                </span>
                <span class="label-open rounded bg-slate-100 px-1 text-[11px] text-indigo-700">"shorten"</span>
            </summary>
            <span class="full">{quoted(s.to_owned())}</span>
        </details>
    }
    .into_any()
}
