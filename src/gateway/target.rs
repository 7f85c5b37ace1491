//! Phase: choose the target. Which provider the call goes to (the URL's, or on `multi` the
//! `X-Antix-Provider` header or the model's name), the upstream path, the wire format it speaks,
//! the model it names, whether it streams, and whether the gateway asks for usage the client did
//! not ask for (and hides it again).

use super::GatewayError;
use super::inspect::Inspected;
use super::route::{ProviderPath, Route};
use crate::domain::Provider;
use crate::providers::{Wire, multi};

/// The header that picks the provider on `multi`.
const PROVIDER_HEADER: &str = "x-antix-provider";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: Provider,
    /// The provider's path (query excluded).
    pub path: String,
    pub wire: Wire,
    /// The model the request names (Gemini: in the path).
    pub model: Option<String>,
    pub is_stream: bool,
    /// An OpenAI chat stream that did not ask for usage: the gateway asks for it upstream (it
    /// is the only way to know what the call cost) and removes it from what the client sees.
    pub inject_usage: bool,
    /// The body already has `stream_options` (so injecting rewrites it, never adds a second).
    pub stream_options: bool,
    /// On `multi`, a chat request in one provider's shape for another provider's model: the
    /// body is translated on the way out and the answer on the way back.
    pub translate: Option<Translation>,
    /// The upstream query, when it is not the client's (a translated Gemini stream asks
    /// `alt=sse`).
    pub query: Option<String>,
}

/// A shape conversion: the client speaks `client`, the provider `upstream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    pub client: Provider,
    pub upstream: Provider,
}

impl Translation {
    /// `anthropic→openai`, as the trace shows it.
    pub fn label(self) -> String {
        format!("{}→{}", self.client.as_str(), self.upstream.as_str())
    }
}

/// The chat APIs `multi` translates between.
pub(crate) fn is_chat(wire: Wire) -> bool {
    matches!(
        wire,
        Wire::OpenAiChat | Wire::AnthropicMessages | Wire::GeminiGenerate
    )
}

/// Where a translated chat call goes at `provider`.
pub(crate) fn chat_path(provider: Provider, model: &str, stream: bool) -> (String, Option<String>) {
    match provider {
        Provider::OpenAi => ("/v1/chat/completions".into(), None),
        Provider::Anthropic => ("/v1/messages".into(), None),
        Provider::Gemini if stream => (
            format!(
                "/v1beta/models/{}:streamGenerateContent",
                model.strip_prefix("models/").unwrap_or(model)
            ),
            Some("alt=sse".into()),
        ),
        Provider::Gemini => (
            format!(
                "/v1beta/models/{}:generateContent",
                model.strip_prefix("models/").unwrap_or(model)
            ),
            None,
        ),
    }
}

pub fn choose(
    route: &Route,
    parts: &http::request::Parts,
    family: Provider,
    routes: &multi::Routes,
    request: &Inspected,
) -> Result<Target, GatewayError> {
    let facts = &request.facts;
    let model = facts.model().map(str::to_owned);
    let provider = match route.provider {
        ProviderPath::One(p) => p,
        ProviderPath::Multi => match parts.headers.get(PROVIDER_HEADER) {
            Some(h) => {
                let v = h.to_str().unwrap_or("").trim().to_ascii_lowercase();
                Provider::parse(&v).ok_or(GatewayError::UnknownProviderHeader(v))?
            }
            None => match &model {
                Some(m) => routes
                    .provider_for_model(m)
                    .ok_or_else(|| GatewayError::UnroutableModel(m.clone()))?,
                None if family != Provider::OpenAi => family,
                None => return Err(GatewayError::NoModel),
            },
        },
    };
    let client_wire = Wire::classify(family, &parts.method, &route.native_path);
    let is_stream = facts.stream || route.native_path.ends_with(":streamGenerateContent");
    if route.provider == ProviderPath::Multi && provider != family && is_chat(client_wire) {
        let Some(m) = &model else {
            return Err(GatewayError::NoModel);
        };
        let (path, query) = chat_path(provider, m, is_stream);
        return Ok(Target {
            provider,
            wire: Wire::classify(provider, &parts.method, &path),
            path,
            model,
            is_stream,
            // The translated request asks for usage itself; the translator decides what the
            // client sees of it.
            inject_usage: false,
            stream_options: false,
            translate: Some(Translation {
                client: family,
                upstream: provider,
            }),
            query,
        });
    }
    let path = if route.provider == ProviderPath::Multi
        && family == Provider::OpenAi
        && provider != Provider::OpenAi
    {
        multi::openai_compatible_path(provider, &route.native_path)
    } else {
        route.native_path.clone()
    };
    let wire = Wire::classify(family, &parts.method, &path);
    // `include_usage: false` is asked over like an absent one: the client still gets the
    // stream it asked for, and the gateway learns what the call cost.
    let inject_usage =
        wire == Wire::OpenAiChat && is_stream && facts.include_usage != Some(true) && request.json;
    Ok(Target {
        provider,
        path,
        wire,
        model,
        is_stream,
        inject_usage,
        stream_options: facts.stream_options,
        translate: None,
        query: None,
    })
}

/// `/v1beta/models/{model}:method` → the model.
pub fn path_model(path: &str) -> Option<String> {
    let rest = path.split("/models/").nth(1)?;
    let model = rest.split(':').next()?;
    (!model.is_empty() && !model.contains('/')).then(|| model.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_model_from_path() {
        assert_eq!(
            path_model("/v1beta/models/gemini-2.5-pro:streamGenerateContent").as_deref(),
            Some("gemini-2.5-pro")
        );
        assert_eq!(path_model("/v1beta/models"), None);
        assert_eq!(path_model("/v1/chat/completions"), None);
    }
}
