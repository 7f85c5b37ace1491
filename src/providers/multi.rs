//! The universal `multi` endpoint: one base URL for every provider. The provider comes from the
//! `X-Antix-Provider` header when present, else from the model name by prefix:
//!
//! | Model prefix | Provider |
//! |---|---|
//! | `gpt-`, `o1`, `o3`, `o4`, `chatgpt-`, `text-embedding-`, `davinci-`, `babbage-`, `omni-moderation-`, `dall-e-`, `gpt-image-`, `tts-`, `whisper-` | openai |
//! | `claude-` | anthropic |
//! | `gemini-`, `gemma-`, `models/gemini-` | gemini |
//!
//! Extra rules (checked first) come from `ANTIX_MULTI_ROUTES`, e.g. `mistral-=openai,my-ft-=openai`.
//!
//! The wire format follows the path: `/v1/messages` is Anthropic's, `/v1beta/models/…` Gemini's,
//! anything else OpenAI's. An OpenAI-shaped chat request for a Claude or Gemini model goes to
//! that provider's OpenAI-compatible API.

use super::Provider;

/// The built-in prefix table, in the order it is checked.
pub const DEFAULT_ROUTES: &[(&str, Provider)] = &[
    ("gpt-", Provider::OpenAi),
    ("o1", Provider::OpenAi),
    ("o3", Provider::OpenAi),
    ("o4", Provider::OpenAi),
    ("chatgpt-", Provider::OpenAi),
    ("text-embedding-", Provider::OpenAi),
    ("davinci-", Provider::OpenAi),
    ("babbage-", Provider::OpenAi),
    ("omni-moderation-", Provider::OpenAi),
    ("dall-e-", Provider::OpenAi),
    ("gpt-image-", Provider::OpenAi),
    ("tts-", Provider::OpenAi),
    ("whisper-", Provider::OpenAi),
    ("claude-", Provider::Anthropic),
    ("gemini-", Provider::Gemini),
    ("gemma-", Provider::Gemini),
    ("models/gemini-", Provider::Gemini),
];

/// The routing table: configured rules first, then the defaults.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    extra: Vec<(String, Provider)>,
}

impl Routes {
    /// Parses `prefix=provider,prefix=provider`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut extra = Vec::new();
        for rule in spec.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let (prefix, provider) = rule
                .split_once('=')
                .ok_or_else(|| format!("`{rule}` is not prefix=provider"))?;
            let provider = Provider::parse(provider.trim()).ok_or_else(|| {
                format!("`{provider}` is not a provider (openai, anthropic, gemini)")
            })?;
            if prefix.trim().is_empty() {
                return Err(format!("`{rule}` has an empty prefix"));
            }
            extra.push((prefix.trim().to_owned(), provider));
        }
        Ok(Routes { extra })
    }

    pub fn provider_for_model(&self, model: &str) -> Option<Provider> {
        let m = model.trim();
        self.extra
            .iter()
            .map(|(p, prov)| (p.as_str(), *prov))
            .chain(DEFAULT_ROUTES.iter().copied())
            .find(|(prefix, _)| m.starts_with(prefix))
            .map(|(_, p)| p)
    }
}

/// The API family a `multi` request speaks, from its native path.
pub fn wire_family(native_path: &str) -> Provider {
    if native_path.starts_with("/v1/messages") {
        Provider::Anthropic
    } else if native_path.starts_with("/v1beta/")
        || native_path.starts_with("/v1/models/") && native_path.contains(':')
    {
        Provider::Gemini
    } else {
        Provider::OpenAi
    }
}

/// The upstream path for an OpenAI-shaped request sent to `provider`'s OpenAI-compatible API.
pub fn openai_compatible_path(provider: Provider, native_path: &str) -> String {
    let tail = native_path.strip_prefix("/v1").unwrap_or(native_path);
    match provider {
        Provider::OpenAi | Provider::Anthropic => format!("/v1{tail}"),
        Provider::Gemini => format!("/v1beta/openai{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table() {
        let r = Routes::default();
        for (m, p) in [
            ("gpt-4o", Provider::OpenAi),
            ("o3-mini", Provider::OpenAi),
            ("o4-mini-2025-04-16", Provider::OpenAi),
            ("chatgpt-4o-latest", Provider::OpenAi),
            ("text-embedding-3-small", Provider::OpenAi),
            ("claude-sonnet-4-20250514", Provider::Anthropic),
            ("gemini-2.5-pro", Provider::Gemini),
            ("models/gemini-2.5-flash", Provider::Gemini),
        ] {
            assert_eq!(r.provider_for_model(m), Some(p), "{m}");
        }
        assert_eq!(r.provider_for_model("llama-3"), None);
    }

    #[test]
    fn configured_rules_come_first() {
        let r = Routes::parse("llama-=openai, gpt-5-weird=anthropic").unwrap();
        assert_eq!(r.provider_for_model("llama-3"), Some(Provider::OpenAi));
        assert_eq!(
            r.provider_for_model("gpt-5-weird"),
            Some(Provider::Anthropic)
        );
        assert!(Routes::parse("x").is_err());
        assert!(Routes::parse("x=azure").is_err());
    }

    #[test]
    fn compatible_paths() {
        assert_eq!(
            openai_compatible_path(Provider::Gemini, "/v1/chat/completions"),
            "/v1beta/openai/chat/completions"
        );
        assert_eq!(
            openai_compatible_path(Provider::Anthropic, "/v1/chat/completions"),
            "/v1/chat/completions"
        );
        assert_eq!(wire_family("/v1/messages"), Provider::Anthropic);
        assert_eq!(
            wire_family("/v1beta/models/gemini-2.5-pro:generateContent"),
            Provider::Gemini
        );
        assert_eq!(wire_family("/v1/chat/completions"), Provider::OpenAi);
    }
}
