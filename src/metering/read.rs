//! Reading a request's [`Facts`] out of its body: JSON for most APIs, multipart forms for audio
//! and image uploads, a batch's requests inline or from the JSONL file being uploaded.
//!
//! One parse, with typed structs for exactly the fields that matter. In **strict** mode (a
//! virtual key with limits: the gateway must know what it lets through) a body it cannot read
//! with certainty is refused: not JSON, a duplicate of a field it reads (`"model"` twice: the
//! provider would take the last), a field of the wrong type. Lenient mode (passthrough keys)
//! takes what it can and never refuses.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::{BatchItem, Facts};
use crate::providers::Wire;

/// Why a body cannot be read with certainty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// The fields every JSON API may carry that the gateway reads.
#[derive(Deserialize, Default)]
struct Common {
    model: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    n: Option<u64>,
    /// OpenAI's legacy completions: `best_of` candidates are generated (and billed), `n` of
    /// them returned.
    best_of: Option<u64>,
    // Gemini's JSON accepts each field in camelCase and in the proto's snake_case.
    #[serde(rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
    background: Option<bool>,
    size: Option<String>,
    quality: Option<String>,
    service_tier: Option<String>,
    tools: Option<Vec<ToolSpec>>,
}

/// A tool the request offers the model: enough to tell the ones the provider runs itself.
#[derive(Deserialize, Default)]
struct ToolSpec {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "googleMaps", alias = "google_maps")]
    google_maps: Option<IgnoredAny>,
}

impl ToolSpec {
    /// A tool the provider runs and bills by use at prices the gateway does not have (searches,
    /// which it prices, are not among them; tools the client runs cost tokens only).
    fn unpriced(&self) -> Option<&str> {
        if self.google_maps.is_some() {
            return Some("googleMaps");
        }
        let kind = self.kind.as_deref()?;
        (kind == "image_generation"
            || kind == "code_interpreter"
            || kind.starts_with("code_execution"))
        .then_some(kind)
    }
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    #[serde(rename = "maxOutputTokens", alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(rename = "candidateCount", alias = "candidate_count")]
    candidate_count: Option<u64>,
}

impl Common {
    /// A limit of 0 reads as no limit: proto3 JSON cannot tell 0 from unset, so Gemini applies
    /// its default, and the other APIs refuse 0 anyway.
    fn max_output(&self) -> Option<u64> {
        let set = |v: Option<u64>| v.filter(|m| *m > 0);
        set(self.max_tokens)
            .or(set(self.max_completion_tokens))
            .or(set(self.max_output_tokens))
            .or(set(self
                .generation_config
                .as_ref()
                .and_then(|g| g.max_output_tokens)))
    }

    fn n(&self) -> u64 {
        let n = self
            .n
            .or(self
                .generation_config
                .as_ref()
                .and_then(|g| g.candidate_count))
            .unwrap_or(1)
            .max(1);
        n.max(self.best_of.unwrap_or(1))
    }
}

/// Reads a JSON body. `path_model` is the model a Gemini path names (`models/{m}:…`).
pub fn json(
    wire: Wire,
    body: &[u8],
    path_model: Option<&str>,
    strict: bool,
) -> Result<Facts, Unreadable> {
    let mut facts = Facts {
        request_bytes: body.len() as u64,
        n: 1,
        ..Facts::default()
    };
    if let Some(m) = path_model {
        facts.models.push(m.to_owned());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(facts);
    }
    let common: Common = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) if strict => return Err(Unreadable(format!("the JSON body cannot be read: {e}"))),
        Err(_) => Common::default(),
    };
    if let Some(m) = &common.model
        && !facts.models.contains(m)
    {
        facts.models.push(m.clone());
    }
    facts.stream = common.stream == Some(true);
    facts.include_usage = common.stream_options.as_ref().and_then(|s| s.include_usage);
    facts.stream_options = common.stream_options.is_some();
    facts.max_output = common.max_output();
    facts.n = common.n();
    facts.background = common.background == Some(true);
    facts.unpriced_feature = common
        .tools
        .iter()
        .flatten()
        .find_map(ToolSpec::unpriced)
        .map(|t| format!("the `{t}` tool"))
        .or_else(|| {
            // Priority processing is billed above the list prices the catalog has.
            (common.service_tier.as_deref() == Some("priority"))
                .then(|| "`service_tier: priority`".to_owned())
        });
    if wire == Wire::OpenAiImages {
        facts.image_tier = Some(image_tier(
            common.quality.as_deref(),
            common.size.as_deref(),
        ));
    }
    let extra = match wire {
        Wire::OpenAiSpeech => speech(body, &mut facts),
        Wire::AnthropicBatch => anthropic_batch(body, &mut facts),
        Wire::GeminiBatch => gemini_batch(body, path_model, &mut facts),
        Wire::GeminiPredict => gemini_predict(body, &mut facts),
        Wire::GeminiEmbed => gemini_embeds(body, &mut facts),
        Wire::OpenAiBatch => openai_batch(body, &mut facts),
        _ => Ok(()),
    };
    match extra {
        Err(e) if strict => Err(Unreadable(format!("the JSON body cannot be read: {e}"))),
        _ => Ok(facts),
    }
}

/// `quality/WxH`, as the price catalog keys image prices (`auto` when the request leaves it).
pub fn image_tier(quality: Option<&str>, size: Option<&str>) -> String {
    let q = match quality.unwrap_or("auto") {
        "hd" => "high",
        q => q,
    };
    format!("{q}/{}", size.unwrap_or("auto"))
}

fn speech(body: &[u8], facts: &mut Facts) -> Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Speech {
        input: String,
    }
    let s: Speech = serde_json::from_slice(body)?;
    facts.characters = Some(s.input.chars().count() as u64);
    Ok(())
}

fn anthropic_batch(body: &[u8], facts: &mut Facts) -> Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        requests: Vec<Entry<'a>>,
    }
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(borrow)]
        params: &'a RawValue,
    }
    #[derive(Deserialize)]
    struct Params {
        model: String,
        max_tokens: Option<u64>,
    }
    let batch: Batch = serde_json::from_slice(body)?;
    for e in batch.requests {
        let p: Params = serde_json::from_str(e.params.get())?;
        push_model(facts, &p.model);
        facts.batch.push(BatchItem {
            model: p.model,
            request_bytes: e.params.get().len() as u64,
            max_output: p.max_tokens,
            n: 1,
        });
    }
    Ok(())
}

fn gemini_batch(
    body: &[u8],
    path_model: Option<&str>,
    facts: &mut Facts,
) -> Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        batch: Batch<'a>,
    }
    #[derive(Deserialize)]
    struct Batch<'a> {
        #[serde(borrow, rename = "inputConfig", alias = "input_config")]
        input_config: InputConfig<'a>,
    }
    #[derive(Deserialize)]
    struct InputConfig<'a> {
        #[serde(borrow)]
        requests: Option<Requests<'a>>,
        #[serde(rename = "fileName", alias = "file_name")]
        file_name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Requests<'a> {
        #[serde(borrow)]
        requests: Vec<Inline<'a>>,
    }
    #[derive(Deserialize)]
    struct Inline<'a> {
        #[serde(borrow)]
        request: &'a RawValue,
    }
    let b: Body = serde_json::from_slice(body)?;
    let model = path_model.unwrap_or_default().to_owned();
    if let Some(f) = b.batch.input_config.file_name {
        // A file-based batch: its requests are not in the gateway's sight.
        facts.batch_file = Some(f);
    }
    for r in b
        .batch
        .input_config
        .requests
        .map(|r| r.requests)
        .unwrap_or_default()
    {
        let c: Common = serde_json::from_str(r.request.get())?;
        facts.batch.push(BatchItem {
            model: model.clone(),
            request_bytes: r.request.get().len() as u64,
            max_output: c.max_output(),
            n: c.n(),
        });
    }
    Ok(())
}

fn gemini_predict(body: &[u8], facts: &mut Facts) -> Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Predict {
        instances: Vec<IgnoredAny>,
        parameters: Option<Parameters>,
    }
    #[derive(Deserialize)]
    struct Parameters {
        #[serde(rename = "sampleCount", alias = "sample_count")]
        sample_count: Option<u64>,
    }
    let p: Predict = serde_json::from_slice(body)?;
    // Imagen generates four images per prompt unless told otherwise.
    let per = p.parameters.and_then(|p| p.sample_count).unwrap_or(4);
    facts.n = (p.instances.len() as u64).max(1).saturating_mul(per.max(1));
    Ok(())
}

fn gemini_embeds(body: &[u8], facts: &mut Facts) -> Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Embeds {
        requests: Option<Vec<Embed>>,
    }
    #[derive(Deserialize)]
    struct Embed {
        model: Option<String>,
    }
    let e: Embeds = serde_json::from_slice(body)?;
    for r in e.requests.unwrap_or_default() {
        if let Some(m) = r.model {
            push_model(facts, m.strip_prefix("models/").unwrap_or(&m));
        }
    }
    Ok(())
}

fn openai_batch(body: &[u8], facts: &mut Facts) -> Result<(), serde_json::Error> {
    #[derive(Deserialize)]
    struct Batch {
        input_file_id: String,
    }
    let b: Batch = serde_json::from_slice(body)?;
    facts.batch_file = Some(b.input_file_id);
    Ok(())
}

fn push_model(facts: &mut Facts, model: &str) {
    if !facts.models.iter().any(|m| m == model) {
        facts.models.push(model.to_owned());
    }
}

/// The parts of a form that carry files, whether or not the client names a file name.
const UPLOADS: [&str; 4] = ["file", "image", "image[]", "mask"];

/// Reads a multipart form (audio and image uploads, file uploads): its text fields and the size
/// of its file; a batch input file (`purpose=batch`) is read line by line.
pub async fn multipart(
    wire: Wire,
    content_type: &str,
    body: bytes::Bytes,
    strict: bool,
) -> Result<Facts, Unreadable> {
    let bad = |e: &dyn std::fmt::Display| Unreadable(format!("the form cannot be read: {e}"));
    let mut facts = Facts {
        request_bytes: body.len() as u64,
        n: 1,
        ..Facts::default()
    };
    let boundary = match multer::parse_boundary(content_type) {
        Ok(b) => b,
        Err(e) if strict => return Err(bad(&e)),
        Err(_) => return Ok(facts),
    };
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file: Option<bytes::Bytes> = None;
    let mut files: Vec<String> = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if strict => return Err(bad(&e)),
            Err(_) => break,
        };
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let data = match field.bytes().await {
            Ok(d) => d,
            Err(e) if strict => return Err(bad(&e)),
            Err(_) => break,
        };
        if is_file || UPLOADS.contains(&name.as_str()) {
            // The provider reads one `file` (one `image`, one `mask`): with two, which it
            // reads is not for the gateway to guess.
            if strict && !name.ends_with("[]") && files.contains(&name) {
                return Err(Unreadable(format!("the form has the file `{name}` twice")));
            }
            if name == "file" && file.is_none() {
                // Audio to transcribe, or a file to upload: priced by this part alone.
                facts.audio_bytes = Some(data.len() as u64);
                file = Some(data);
            }
            files.push(name);
        } else {
            if strict && fields.iter().any(|(n, _)| *n == name) && !name.ends_with("[]") {
                return Err(Unreadable(format!("the form has the field `{name}` twice")));
            }
            fields.push((name, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if let Some(m) = field("model") {
        facts.models.push(m.trim().to_owned());
    }
    if let Some(n) = field("n") {
        match n.trim().parse::<u64>() {
            Ok(n) => facts.n = n.max(1),
            Err(_) if strict => return Err(Unreadable("the form's `n` is not a number".into())),
            Err(_) => {}
        }
    }
    if wire == Wire::OpenAiImages {
        facts.image_tier = Some(image_tier(field("quality"), field("size")));
    }
    facts.purpose = field("purpose").map(str::to_owned);
    if wire == Wire::OpenAiFileUpload && facts.purpose.as_deref() == Some("batch") {
        let Some(file) = file else {
            return Err(Unreadable("the batch input file is missing".into()));
        };
        match batch_file(&file) {
            Ok(items) => {
                for i in &items {
                    push_model(&mut facts, &i.model);
                }
                facts.batch = items;
            }
            Err(e) if strict => return Err(e),
            Err(_) => {}
        }
    }
    Ok(facts)
}

/// The requests of an OpenAI batch input file (JSONL: `{custom_id, method, url, body}`).
pub fn batch_file(file: &[u8]) -> Result<Vec<BatchItem>, Unreadable> {
    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        body: &'a RawValue,
    }
    let mut items = Vec::new();
    for (i, line) in file.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad =
            |e: serde_json::Error| Unreadable(format!("line {} of the batch file: {e}", i + 1));
        let l: Line = serde_json::from_slice(line).map_err(bad)?;
        let c: Common = serde_json::from_str(l.body.get()).map_err(bad)?;
        let Some(model) = c.model.clone() else {
            return Err(Unreadable(format!(
                "line {} of the batch file names no model",
                i + 1
            )));
        };
        items.push(BatchItem {
            model,
            request_bytes: l.body.get().len() as u64,
            max_output: c.max_output(),
            n: c.n(),
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_reading_refuses_what_it_cannot_be_sure_of() {
        for bad in [
            &br#"{"model":"gpt-4o-mini","model":"gpt-4o"}"#[..],
            br#"{"model":["gpt-4o"]}"#,
            br#"{"model":"gpt-4o","max_tokens":"many"}"#,
            br#"{"model":"gpt-4o","stream_options":{"include_usage":false,"include_usage":false}}"#,
            br#"{"model":"gpt-4o""#,
            b"not json",
        ] {
            assert!(
                json(Wire::OpenAiChat, bad, None, true).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
            // Passthrough: never refused.
            assert!(json(Wire::OpenAiChat, bad, None, false).is_ok());
        }
        // An escaped key is the same key.
        assert!(
            json(
                Wire::OpenAiChat,
                br#"{"model":"a","mod\u0065l":"b"}"#,
                None,
                true
            )
            .is_err()
        );
    }

    #[test]
    fn facts_of_chat_and_gemini() {
        let f = json(
            Wire::OpenAiChat,
            br#"{"model":"gpt-4o","n":3,"max_completion_tokens":50,"stream":true,"stream_options":{"include_usage":false}}"#,
            None,
            true,
        )
        .unwrap();
        assert_eq!(f.models, vec!["gpt-4o".to_owned()]);
        assert_eq!(
            (f.n, f.max_output, f.stream, f.include_usage),
            (3, Some(50), true, Some(false))
        );
        let g = json(
            Wire::GeminiGenerate,
            br#"{"contents":[],"generationConfig":{"candidateCount":2,"maxOutputTokens":9}}"#,
            Some("gemini-2.5-flash"),
            true,
        )
        .unwrap();
        assert_eq!(
            (g.model(), g.n, g.max_output),
            (Some("gemini-2.5-flash"), 2, Some(9))
        );
    }

    #[test]
    fn batches_name_every_model() {
        let a = json(
            Wire::AnthropicBatch,
            br#"{"requests":[{"custom_id":"a","params":{"model":"claude-haiku-4-5","max_tokens":10,"messages":[]}},{"custom_id":"b","params":{"model":"claude-opus-4-8","max_tokens":20,"messages":[]}}]}"#,
            None,
            true,
        )
        .unwrap();
        assert_eq!(
            a.models,
            vec!["claude-haiku-4-5".to_owned(), "claude-opus-4-8".to_owned()]
        );
        assert_eq!(a.batch.len(), 2);
        let file = b"{\"custom_id\":\"1\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o\",\"max_tokens\":5}}\n{\"custom_id\":\"2\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"o3\"}}\n";
        let items = batch_file(file).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].model, "o3");
        assert!(batch_file(b"{\"body\":{}}").is_err());
    }

    #[tokio::test]
    async fn forms_give_their_model_and_file_size() {
        let body = "--X\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n0123456789\r\n--X--\r\n";
        let f = multipart(
            Wire::OpenAiTranscription,
            "multipart/form-data; boundary=X",
            bytes::Bytes::from(body),
            true,
        )
        .await
        .unwrap();
        assert_eq!(f.model(), Some("whisper-1"));
        assert_eq!(f.audio_bytes, Some(10));
        let twice = body.replace(
            "--X--",
            "--X\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-2\r\n--X--",
        );
        assert!(
            multipart(
                Wire::OpenAiTranscription,
                "multipart/form-data; boundary=X",
                bytes::Bytes::from(twice),
                true
            )
            .await
            .is_err()
        );
        // Two files: which one the provider reads is not for the gateway to guess.
        let two_files = body.replace(
            "--X--",
            "--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.mp3\"\r\n\r\n0123456789012345678901234567890123456789\r\n--X--",
        );
        let read = |strict| {
            multipart(
                Wire::OpenAiTranscription,
                "multipart/form-data; boundary=X",
                bytes::Bytes::from(two_files.clone()),
                strict,
            )
        };
        assert!(read(true).await.is_err());
        assert!(read(false).await.is_ok());
        // Other parts do not count as the audio.
        let extra = body.replace(
            "--X--",
            "--X\r\nContent-Disposition: form-data; name=\"notes\"; filename=\"n.txt\"\r\n\r\n0123456789012345678901234567890123456789\r\n--X--",
        );
        let f = multipart(
            Wire::OpenAiTranscription,
            "multipart/form-data; boundary=X",
            bytes::Bytes::from(extra),
            true,
        )
        .await
        .unwrap();
        assert_eq!(f.audio_bytes, Some(10));
    }

    #[test]
    fn gemini_fields_read_in_either_spelling() {
        let read = |body: &str| {
            json(
                Wire::GeminiGenerate,
                body.as_bytes(),
                Some("gemini-2.5-flash"),
                true,
            )
        };
        let g =
            read(r#"{"generation_config":{"candidate_count":3,"max_output_tokens":7}}"#).unwrap();
        assert_eq!((g.n, g.max_output), (3, Some(7)));
        // Both spellings at once: which one wins is the provider's business, so strict refuses.
        assert!(read(r#"{"generationConfig":{"maxOutputTokens":7},"generation_config":{"maxOutputTokens":9000}}"#).is_err());
        assert!(
            read(r#"{"generationConfig":{"maxOutputTokens":7,"max_output_tokens":9000}}"#).is_err()
        );
        // 0 is proto3's "unset": the provider's default applies, so the estimate uses it too.
        assert_eq!(
            read(r#"{"generationConfig":{"maxOutputTokens":0}}"#)
                .unwrap()
                .max_output,
            None
        );
        let batch = json(
            Wire::GeminiBatch,
            br#"{"batch":{"inputConfig":{"fileName":"files/abc"}}}"#,
            Some("gemini-2.5-flash"),
            true,
        )
        .unwrap();
        assert_eq!(batch.batch_file.as_deref(), Some("files/abc"));
    }

    #[test]
    fn tools_the_provider_bills_by_use_are_named() {
        let read = |wire, body: &str| {
            json(wire, body.as_bytes(), None, true)
                .unwrap()
                .unpriced_feature
        };
        assert_eq!(
            read(Wire::OpenAiResponses, r#"{"model":"gpt-5","tools":[{"type":"function","name":"f"},{"type":"image_generation"}]}"#).as_deref(),
            Some("the `image_generation` tool")
        );
        assert!(read(Wire::AnthropicMessages, r#"{"model":"claude-sonnet-4-5","tools":[{"type":"code_execution_20250825","name":"code_execution"}]}"#).is_some());
        assert!(
            json(
                Wire::GeminiGenerate,
                br#"{"tools":[{"google_maps":{}}]}"#,
                Some("gemini-2.5-flash"),
                true
            )
            .unwrap()
            .unpriced_feature
            .is_some()
        );
        assert!(
            read(
                Wire::OpenAiChat,
                r#"{"model":"gpt-4o","service_tier":"priority"}"#
            )
            .is_some()
        );
        // Searches are priced; tools the client runs cost tokens only.
        for ok in [
            r#"{"model":"gpt-5","tools":[{"type":"web_search"},{"type":"file_search"},{"type":"custom","name":"apply_patch"}],"service_tier":"flex"}"#,
            r#"{"model":"claude-sonnet-4-5","tools":[{"name":"Bash","input_schema":{}},{"type":"web_search_20250305","name":"web_search"}]}"#,
        ] {
            assert_eq!(read(Wire::OpenAiResponses, ok), None, "{ok}");
        }
    }

    #[test]
    fn best_of_is_what_is_billed() {
        let f = json(
            Wire::OpenAiCompletions,
            br#"{"model":"gpt-3.5-turbo-instruct","n":2,"best_of":5,"max_tokens":10}"#,
            None,
            true,
        )
        .unwrap();
        assert_eq!(f.n, 5);
    }
}

#[cfg(test)]
mod properties {
    //! Strict reading as a property: when it accepts a body, the model it read is the one the
    //! provider will use (a JSON parser keeps the last of duplicate keys), and the choices it
    //! priced are the ones asked for.
    use proptest::prelude::*;

    use super::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec!["gpt-4o-mini", "gpt-4o", "o3", "claude-haiku-4-5"])
                .prop_map(|m| format!(r#""model":"{m}""#)),
            Just(r#""model":null"#.to_owned()),
            Just(r#""model":["gpt-4o"]"#.to_owned()),
            Just(r#""model":7"#.to_owned()),
            (0u64..5).prop_map(|n| format!(r#""n":{n}"#)),
            Just(r#""n":"3""#.to_owned()),
            Just(r#""stream":true"#.to_owned()),
            Just(r#""stream_options":{"include_usage":false}"#.to_owned()),
            Just(r#""stream_options":{"include_usage":"no"}"#.to_owned()),
            (1u64..100_000).prop_map(|n| format!(r#""max_tokens":{n}"#)),
            Just(r#""max_tokens":-1"#.to_owned()),
            Just(r#""messages":[{"role":"user","content":"hi"}]"#.to_owned()),
            Just(r#""mod\u0065l":"gpt-4o""#.to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn what_strict_reading_accepts_is_what_the_provider_reads(fields in prop::collection::vec(field(), 0..6)) {
            let body = format!("{{{}}}", fields.join(","));
            let Ok(facts) = json(Wire::OpenAiChat, body.as_bytes(), None, true) else {
                return Ok(());
            };
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let provider_model = v.get("model").and_then(|m| m.as_str());
            prop_assert_eq!(facts.model(), provider_model);
            let n = v.get("n").and_then(serde_json::Value::as_u64).unwrap_or(1).max(1);
            prop_assert_eq!(facts.n, n);
            prop_assert_eq!(facts.include_usage, v.pointer("/stream_options/include_usage").and_then(serde_json::Value::as_bool));
        }
    }
}
