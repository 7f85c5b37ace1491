//! What a call costs, before it runs (the estimate reserved against a virtual key's budgets) and
//! after (what is charged when the provider reported no usage, or billed in units other than
//! tokens). One place for every metered API of [`crate::providers::apis`]: tokens, images, speech,
//! transcription and batches.
//!
//! Estimates are generous on purpose: a budget holds to within one call's cost beyond its
//! estimate, so the estimate is the upper bound the request allows: its prompt's size in tokens
//! (about four bytes each, an overestimate for JSON), plus the most output it allows times the
//! choices it asks for (`n`, `candidateCount`, images). A request that sets no output limit is
//! assumed to produce [`DEFAULT_MAX_OUTPUT_TOKENS`], or for reasoning models (whose hidden
//! reasoning is billed as output) [`REASONING_DEFAULT_OUTPUT`] capped at the model's maximum.

use serde::{Deserialize, Serialize};

use crate::pricing::{Catalog, Cost, Units};
use crate::providers::{Billing, Wire};
use crate::usage::Usage;

pub mod read;
pub mod results;

/// Output tokens assumed for the estimate when a request sets no maximum.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u64 = 4096;
/// The same for reasoning models, whose hidden reasoning is billed as output.
pub const REASONING_DEFAULT_OUTPUT: u64 = 32_768;
/// Image tokens assumed per generated image when an image model is priced by tokens (OpenAI's
/// largest high-quality image, 1536×1024, is 6,240 output tokens).
const TOKENS_PER_IMAGE: u64 = 6_240;
/// The lowest bitrate assumed for uploaded audio (16 kbit/s): an upper bound on its duration.
const AUDIO_BYTES_PER_SECOND: u64 = 2_000;
/// Speech runs about fifteen characters a second; ten is the generous bound.
const CHARACTERS_PER_SECOND: u64 = 10;

/// What a request says that its cost depends on, read once by the gateway (see [`read`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Every model the call names: the body's (or form field's), the path's, each batch
    /// request's. The allow-list applies to each.
    pub models: Vec<String>,
    /// The request body's size.
    pub request_bytes: u64,
    /// The most output the request allows, whatever the API calls it.
    pub max_output: Option<u64>,
    /// Choices, candidates or images asked for (at least 1).
    pub n: u64,
    pub stream: bool,
    /// `stream_options.include_usage`, when the request says.
    pub include_usage: Option<bool>,
    /// The body has `stream_options` (in whatever spelling: a key may be written with escapes).
    pub stream_options: bool,
    /// A Responses call that runs in the background (its usage arrives later, elsewhere).
    pub background: bool,
    /// Images: the `quality/WxH` tier asked for (`high/1024x1024`; `auto` when unsaid).
    pub image_tier: Option<String>,
    /// Speech: the characters of text to speak.
    pub characters: Option<u64>,
    /// Transcription: the size of the uploaded audio.
    pub audio_bytes: Option<u64>,
    /// A batch's requests (inline, or read from the batch input file being uploaded).
    pub batch: Vec<BatchItem>,
    /// A batch whose requests are in a file: OpenAI's `input_file_id`, Gemini's `file_name`.
    pub batch_file: Option<String>,
    /// A file upload's purpose (`batch`, …).
    pub purpose: Option<String>,
    /// What in the request the provider bills at prices the gateway does not have (a tool it
    /// runs, a pricier service tier): refused for keys with limits, like an unmetered API.
    pub unpriced_feature: Option<String>,
}

/// One request of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItem {
    pub model: String,
    pub request_bytes: u64,
    pub max_output: Option<u64>,
    pub n: u64,
}

impl Facts {
    /// The model the call is priced as: the first it names.
    pub fn model(&self) -> Option<&str> {
        self.models.first().map(String::as_str)
    }
}

/// Why a call cannot be estimated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    #[error("model `{0}` has no price in the catalog")]
    Unpriced(String),
    #[error("the request names no model")]
    NoModel,
}

/// The most a call may cost, nano-USD, for its reservation. Free calls estimate to 0.
pub fn estimate(wire: Wire, facts: &Facts) -> Result<i64, EstimateError> {
    let catalog = Catalog::builtin();
    let billing = wire.billing();
    if !billing.metered() {
        return Ok(0);
    }
    if billing == Billing::BatchCreate {
        let mut total: i64 = 0;
        for item in &facts.batch {
            let usage = token_bound(
                catalog,
                &item.model,
                item.request_bytes,
                item.max_output,
                item.n,
            );
            let cost = catalog
                .batch_cost(&item.model, &usage)
                .ok_or_else(|| EstimateError::Unpriced(item.model.clone()))?;
            total = total.saturating_add(cost.total_nanos);
        }
        return Ok(total);
    }
    let model = facts.model().ok_or(EstimateError::NoModel)?;
    let unpriced = || EstimateError::Unpriced(model.to_owned());
    let cost = match billing {
        Billing::Images => image_bound(catalog, model, facts),
        Billing::Speech => speech_cost(catalog, model, facts.characters.unwrap_or(0)),
        Billing::Transcription => {
            let ms = facts.audio_bytes.unwrap_or(0).saturating_mul(1000) / AUDIO_BYTES_PER_SECOND;
            transcription_cost(catalog, model, ms, None)
        }
        _ => catalog.cost(
            model,
            &token_bound(
                catalog,
                model,
                facts.request_bytes,
                facts.max_output,
                facts.n,
            ),
        ),
    };
    cost.map(|c| c.total_nanos).ok_or_else(unpriced)
}

/// The upper bound of a token-priced call's usage.
pub fn token_bound(
    catalog: &Catalog,
    model: &str,
    request_bytes: u64,
    max_output: Option<u64>,
    n: u64,
) -> Usage {
    Usage {
        input_tokens: Some(request_bytes.div_ceil(4)),
        output_tokens: Some(output_bound(catalog, model, max_output).saturating_mul(n.max(1))),
        ..Default::default()
    }
}

/// The most output tokens one choice may produce.
pub fn output_bound(catalog: &Catalog, model: &str, max_output: Option<u64>) -> u64 {
    if let Some(m) = max_output {
        return m;
    }
    match catalog.units(model) {
        Some(u) if u.reasoning_model => {
            REASONING_DEFAULT_OUTPUT.min(u.max_output.unwrap_or(REASONING_DEFAULT_OUTPUT))
        }
        _ => DEFAULT_MAX_OUTPUT_TOKENS,
    }
}

/// Whether hidden reasoning is billed as output for this model.
pub fn is_reasoning_model(model: &str) -> bool {
    Catalog::builtin()
        .units(model)
        .is_some_and(|u| u.reasoning_model)
}

fn image_bound(catalog: &Catalog, model: &str, facts: &Facts) -> Option<Cost> {
    let units = catalog.units(model)?;
    let n = facts.n.max(1);
    if units.per_image.is_some() || !units.images.is_empty() {
        let tier = image_price_tier(catalog, model, facts.image_tier.as_deref());
        return catalog.units_cost(
            model,
            &Usage::default(),
            &Units {
                images: Some(n),
                image_tier: tier,
                ..Units::default()
            },
        );
    }
    // Priced by image tokens only: the largest image's tokens, at the image output price.
    image_tokens_cost(
        catalog,
        model,
        &Usage {
            input_tokens: Some(facts.request_bytes.div_ceil(4)),
            output_tokens: Some(TOKENS_PER_IMAGE.saturating_mul(n)),
            ..Default::default()
        },
        0,
    )
}

/// The catalog tier an image request is priced at: the one it names, else for `auto` (or a size
/// or quality the catalog does not list) the dearest tier of that size, else of any size (an
/// upper bound: the provider decides what `auto` means).
pub fn image_price_tier(catalog: &Catalog, model: &str, asked: Option<&str>) -> Option<String> {
    let units = catalog.units(model)?;
    if let Some(t) = asked
        && units.images.contains_key(t)
    {
        return Some(t.to_owned());
    }
    let size = asked.and_then(|t| t.split_once('/')).map(|(_, s)| s);
    let dearest = |filter: &dyn Fn(&str) -> bool| {
        units
            .images
            .iter()
            .filter(|(k, _)| filter(k))
            .max_by_key(|(_, p)| **p)
            .map(|(k, _)| k.clone())
    };
    size.and_then(|s| dearest(&|k: &str| k.ends_with(s)))
        .or_else(|| dearest(&|_| true))
}

/// Image-model tokens: text input at the input price, image input and output at the image token
/// prices (the image model's `usage` splits input into text and image tokens).
pub fn image_tokens_cost(
    catalog: &Catalog,
    model: &str,
    usage: &Usage,
    image_input_tokens: u64,
) -> Option<Cost> {
    let units = catalog.units(model)?;
    let mut cost = catalog.cost(model, &Usage::default())?;
    let input = usage.input_tokens.unwrap_or(0);
    let text_in = input.saturating_sub(image_input_tokens);
    let output = usage.output_tokens.unwrap_or(0);
    let image_out_price = units.image_output.unwrap_or(cost.prices.output);
    let image_in_price = units.image_input.unwrap_or(cost.prices.input);
    let pico = u128::from(text_in) * u128::from(cost.prices.input)
        + u128::from(image_input_tokens) * u128::from(image_in_price)
        + u128::from(output) * u128::from(image_out_price);
    let nanos = i64::try_from(pico.div_ceil(1000)).unwrap_or(i64::MAX);
    cost.input_nanos = i64::try_from(
        (u128::from(text_in) * u128::from(cost.prices.input)
            + u128::from(image_input_tokens) * u128::from(image_in_price))
        .div_ceil(1000),
    )
    .unwrap_or(i64::MAX);
    cost.output_nanos = nanos - cost.input_nanos;
    cost.total_nanos = nanos;
    Some(cost)
}

/// Speech: characters at the per-character price; token-priced models pay for the text's tokens
/// and the audio's duration (estimated from the text).
pub fn speech_cost(catalog: &Catalog, model: &str, characters: u64) -> Option<Cost> {
    let units = catalog.units(model)?;
    if units.per_character.is_some() {
        return catalog.units_cost(
            model,
            &Usage::default(),
            &Units {
                characters: Some(characters),
                ..Units::default()
            },
        );
    }
    let usage = Usage {
        input_tokens: Some(characters.div_ceil(4)),
        output_tokens: Some(0),
        ..Default::default()
    };
    if units.output_per_second.is_some() {
        catalog.units_cost(
            model,
            &usage,
            &Units {
                audio_ms: Some(characters.saturating_mul(1000) / CHARACTERS_PER_SECOND),
                ..Units::default()
            },
        )
    } else {
        catalog.cost(model, &usage)
    }
}

/// Transcription: seconds of audio at the per-second price, or the reported tokens.
pub fn transcription_cost(
    catalog: &Catalog,
    model: &str,
    audio_ms: u64,
    tokens: Option<&Usage>,
) -> Option<Cost> {
    if let Some(u) = tokens
        && u.is_reported()
    {
        return catalog.cost(model, u);
    }
    let units = catalog.units(model)?;
    if units.per_second.is_some() {
        return catalog.units_cost(
            model,
            &Usage::default(),
            &Units {
                audio_ms: Some(audio_ms),
                ..Units::default()
            },
        );
    }
    // Token-priced audio: about 32 tokens a second in, a transcript's worth out.
    catalog.cost(
        model,
        &Usage {
            input_tokens: Some(audio_ms * 32 / 1000),
            output_tokens: Some(DEFAULT_MAX_OUTPUT_TOKENS),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(model: &str) -> Facts {
        Facts {
            models: vec![model.into()],
            request_bytes: 400,
            n: 1,
            ..Facts::default()
        }
    }

    #[test]
    fn token_estimates_count_choices_and_reasoning() {
        let one = estimate(Wire::OpenAiChat, &facts("gpt-4o")).unwrap();
        assert_eq!(one, 100 * 2500 + 4096 * 10_000);
        let three = estimate(
            Wire::OpenAiChat,
            &Facts {
                n: 3,
                ..facts("gpt-4o")
            },
        )
        .unwrap();
        assert_eq!(three, 100 * 2500 + 3 * 4096 * 10_000);
        // o3 reasons: without a limit, the bound is far above a plain model's.
        let o3 = catalog_output_bound("o3");
        assert!(o3 > DEFAULT_MAX_OUTPUT_TOKENS, "{o3}");
        let limited = Facts {
            max_output: Some(100),
            ..facts("o3")
        };
        assert_eq!(
            estimate(Wire::OpenAiChat, &limited).unwrap(),
            100 * 2000 + 100 * 8000
        );
        assert_eq!(
            estimate(Wire::OpenAiChat, &facts("no-such-model")),
            Err(EstimateError::Unpriced("no-such-model".into()))
        );
        assert_eq!(estimate(Wire::OpenAiFree, &Facts::default()), Ok(0));
    }

    fn catalog_output_bound(model: &str) -> u64 {
        output_bound(Catalog::builtin(), model, None)
    }

    #[test]
    fn images_speech_and_audio_have_prices() {
        let img = Facts {
            n: 2,
            image_tier: Some("high/1024x1024".into()),
            ..facts("gpt-image-1")
        };
        assert_eq!(estimate(Wire::OpenAiImages, &img).unwrap(), 2 * 167_000_000);
        // `auto` is priced as the dearest tier.
        let auto = Facts {
            image_tier: Some("auto/auto".into()),
            ..facts("gpt-image-1")
        };
        assert_eq!(estimate(Wire::OpenAiImages, &auto).unwrap(), 250_000_000);
        let tts = Facts {
            characters: Some(1000),
            ..facts("tts-1")
        };
        assert_eq!(estimate(Wire::OpenAiSpeech, &tts).unwrap(), 15_000_000);
        // 1 MB of audio is at most 500 s at 16 kbit/s: whisper at $0.006/min.
        let whisper = Facts {
            audio_bytes: Some(1_000_000),
            ..facts("whisper-1")
        };
        assert_eq!(
            estimate(Wire::OpenAiTranscription, &whisper).unwrap(),
            50_000_000
        );
    }

    #[test]
    fn batches_are_estimated_at_the_batch_price() {
        let f = Facts {
            batch: vec![
                BatchItem {
                    model: "gpt-4o".into(),
                    request_bytes: 400,
                    max_output: Some(100),
                    n: 1,
                };
                10
            ],
            ..Facts::default()
        };
        // Batch prices are half: $1.25/M in, $5/M out.
        assert_eq!(
            estimate(Wire::OpenAiBatch, &f).unwrap(),
            10 * (100 * 1250 + 100 * 5000)
        );
    }
}

/// What a response says was produced, beyond tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Produced {
    /// Images returned (OpenAI `data`, Imagen `predictions`).
    pub images: Option<u64>,
    /// Of the input tokens, those that were images (image models' `input_tokens_details`).
    pub image_input_tokens: u64,
    /// Seconds of audio transcribed (`usage.seconds`, `duration`), in milliseconds.
    pub audio_ms: Option<u64>,
    /// Token usage of an image or audio model, when it reports it.
    pub usage: Usage,
}

/// Reads what an images or transcription response produced.
pub fn produced(wire: Wire, body: &[u8]) -> Produced {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Produced::default();
    };
    let mut p = Produced::default();
    let list_len = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_array)
            .map(|a| a.len() as u64)
    };
    match wire {
        Wire::OpenAiImages => {
            p.images = list_len("data");
            if let Some(u) = v.get("usage") {
                p.usage = crate::providers::openai::usage(u).unwrap_or_default();
                p.image_input_tokens = u
                    .pointer("/input_tokens_details/image_tokens")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
            }
        }
        Wire::GeminiPredict => p.images = list_len("predictions"),
        Wire::OpenAiTranscription => {
            let u = v.get("usage");
            let seconds = u
                .filter(|u| u.get("type").and_then(serde_json::Value::as_str) == Some("duration"))
                .and_then(|u| u.get("seconds"))
                .or_else(|| v.get("duration"))
                .and_then(serde_json::Value::as_f64);
            p.audio_ms = seconds.map(|s| (s.max(0.0) * 1000.0).round() as u64);
            if let Some(u) =
                u.filter(|u| u.get("type").and_then(serde_json::Value::as_str) == Some("tokens"))
            {
                p.usage = crate::providers::openai::usage(u).unwrap_or_default();
            }
        }
        _ => {}
    }
    p
}

/// What a finished images, speech or transcription call costs, from the request's facts and
/// the response; `None` when nothing billable came back.
pub fn units_charge(wire: Wire, model: &str, facts: &Facts, body: &[u8]) -> Option<Cost> {
    let catalog = Catalog::builtin();
    match wire.billing() {
        Billing::Images => {
            let p = produced(wire, body);
            if p.usage.is_reported() {
                return image_tokens_cost(catalog, model, &p.usage, p.image_input_tokens);
            }
            let images = p.images.filter(|n| *n > 0)?;
            catalog.units_cost(
                model,
                &Usage::default(),
                &Units {
                    images: Some(images),
                    image_tier: image_price_tier(catalog, model, facts.image_tier.as_deref()),
                    ..Units::default()
                },
            )
        }
        Billing::Speech => speech_cost(catalog, model, facts.characters.unwrap_or(0)),
        Billing::Transcription => {
            let p = produced(wire, body);
            let ms = p.audio_ms.unwrap_or_else(|| {
                facts.audio_bytes.unwrap_or(0).saturating_mul(1000) / AUDIO_BYTES_PER_SECOND
            });
            transcription_cost(catalog, model, ms, Some(&p.usage))
        }
        _ => None,
    }
}
