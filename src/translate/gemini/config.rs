//! The settings of a Gemini request around its conversation, read into and written from the
//! neutral [`Request`]: function declarations, the function-calling mode, and the generation
//! config (sampling, length, JSON output, thinking).

use serde_json::{Map, Value, json};

use super::schema::json_schema;
use super::{
    FunctionCallingConfig, FunctionDeclaration, GenerationConfig, ThinkingConfig, Tool as WireTool,
    ToolConfig,
};
use crate::translate::ir::{Effort, Reasoning, Request, ResponseFormat, Tool, ToolChoice};
use crate::translate::{Res, check_rest, unsupported};

/// `mediaResolution` is a cost hint, like OpenAI's image `detail`.
const IGNORED_CONFIG: &[&str] = &["mediaResolution", "media_resolution"];

/// A function's output schema (`response`) is a hint for the model that no other shape has; the
/// call and its arguments are unaffected.
pub fn read_declaration(f: FunctionDeclaration) -> Res<Tool> {
    check_rest(
        &f.rest,
        &["response", "responseJsonSchema"],
        "functionDeclarations[].",
    )?;
    let parameters = match (f.parameters_json_schema, f.parameters) {
        (Some(schema), _) => schema,
        (None, Some(openapi)) => json_schema(openapi),
        (None, None) => json!({"type": "object", "properties": {}}),
    };
    Ok(Tool {
        name: f.name,
        description: f.description,
        parameters,
    })
}

pub fn read_tool_config(tc: ToolConfig) -> Res<Option<ToolChoice>> {
    check_rest(&tc.rest, &[], "toolConfig.")?;
    tc.function_calling_config.map(read_choice).transpose()
}

fn read_choice(c: FunctionCallingConfig) -> Res<ToolChoice> {
    let mode = c.mode.as_deref().unwrap_or("AUTO").to_ascii_uppercase();
    Ok(match (mode.as_str(), c.allowed_function_names.as_slice()) {
        ("AUTO", []) => ToolChoice::Auto,
        ("NONE", _) => ToolChoice::None,
        ("ANY", []) => ToolChoice::Required,
        ("ANY", [one]) => ToolChoice::Tool(one.clone()),
        ("ANY" | "AUTO", _) => return unsupported("`allowedFunctionNames` beyond one forced tool"),
        (other, _) => return unsupported(format!("function calling mode `{other}`")),
    })
}

pub fn read_config(mut g: GenerationConfig, ir: &mut Request) -> Res<()> {
    if let Some(Value::Array(m)) = g.rest.get("responseModalities")
        && m.iter()
            .all(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("text")))
    {
        g.rest.remove("responseModalities");
    }
    check_rest(&g.rest, IGNORED_CONFIG, "generationConfig.")?;
    if g.candidate_count.is_some_and(|n| n > 1) {
        return unsupported("`candidateCount` > 1 (several candidates)");
    }
    ir.temperature = g.temperature;
    ir.top_p = g.top_p;
    ir.top_k = g.top_k;
    ir.max_tokens = g.max_output_tokens;
    ir.stop = g.stop_sequences;
    ir.seed = g.seed;
    ir.presence_penalty = g.presence_penalty.filter(|p| *p != 0.0);
    ir.frequency_penalty = g.frequency_penalty.filter(|p| *p != 0.0);
    ir.response_format = match g.response_mime_type.as_deref() {
        None | Some("text/plain") => None,
        Some("application/json") => Some(match (g.response_json_schema, g.response_schema) {
            (Some(schema), _) => ResponseFormat::JsonSchema {
                name: "response".into(),
                schema,
            },
            (None, Some(openapi)) => ResponseFormat::JsonSchema {
                name: "response".into(),
                schema: json_schema(openapi),
            },
            (None, None) => ResponseFormat::JsonObject,
        }),
        Some(other) => return unsupported(format!("`responseMimeType` \"{other}\"")),
    };
    if let Some(t) = g.thinking_config {
        ir.reasoning = match (t.thinking_budget, t.thinking_level.as_deref()) {
            (Some(0), _) => Some(Reasoning::Off),
            (Some(b), _) if b < 0 => Some(Reasoning::Dynamic),
            (Some(b), _) => Some(Reasoning::Budget(b.unsigned_abs())),
            (None, Some(level)) => match Effort::parse(level) {
                Some(e) => Some(Reasoning::Effort(e)),
                None => return unsupported(format!("`thinkingLevel` \"{level}\"")),
            },
            (None, None) => None,
        };
        ir.show_reasoning = t.include_thoughts == Some(true);
    }
    Ok(())
}

pub fn write_tools(ir: &Request) -> Vec<WireTool> {
    if ir.tools.is_empty() {
        return Vec::new();
    }
    vec![WireTool {
        function_declarations: ir.tools.iter().map(write_declaration).collect(),
        rest: Map::new(),
    }]
}

pub fn write_tool_config(ir: &Request) -> Option<ToolConfig> {
    let (mode, allowed) = match ir.tool_choice.as_ref()? {
        ToolChoice::Auto => ("AUTO", Vec::new()),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Tool(name) => ("ANY", vec![name.clone()]),
    };
    Some(ToolConfig {
        function_calling_config: Some(FunctionCallingConfig {
            mode: Some(mode.into()),
            allowed_function_names: allowed,
        }),
        rest: Map::new(),
    })
}

/// Gemini has no end-user field: `user` / `metadata.user_id` only feed the other providers'
/// abuse monitoring, and are dropped.
pub fn write_config(ir: &Request) -> Option<GenerationConfig> {
    let (mime, schema) = match &ir.response_format {
        None => (None, None),
        Some(ResponseFormat::JsonObject) => (Some("application/json".to_owned()), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            (Some("application/json".to_owned()), Some(schema.clone()))
        }
    };
    let budget = match ir.reasoning {
        None => None,
        Some(Reasoning::Off) => Some(0),
        Some(Reasoning::Dynamic) => Some(-1),
        Some(Reasoning::Budget(b)) => Some(i64::try_from(b).unwrap_or(i64::MAX)),
        Some(Reasoning::Effort(e)) => Some(i64::try_from(e.budget()).unwrap_or(i64::MAX)),
    };
    let thinking_config = (budget.is_some() || ir.show_reasoning).then(|| ThinkingConfig {
        thinking_budget: budget,
        thinking_level: None,
        include_thoughts: ir.show_reasoning.then_some(true),
    });
    let g = GenerationConfig {
        temperature: ir.temperature,
        top_p: ir.top_p,
        top_k: ir.top_k,
        max_output_tokens: ir.max_tokens,
        stop_sequences: ir.stop.clone(),
        seed: ir.seed,
        presence_penalty: ir.presence_penalty,
        frequency_penalty: ir.frequency_penalty,
        response_mime_type: mime,
        response_json_schema: schema,
        thinking_config,
        ..GenerationConfig::default()
    };
    (!is_empty(&g)).then_some(g)
}

fn is_empty(g: &GenerationConfig) -> bool {
    g.temperature.is_none()
        && g.top_p.is_none()
        && g.top_k.is_none()
        && g.max_output_tokens.is_none()
        && g.stop_sequences.is_empty()
        && g.seed.is_none()
        && g.presence_penalty.is_none()
        && g.frequency_penalty.is_none()
        && g.response_mime_type.is_none()
        && g.thinking_config.is_none()
}

/// Tool definitions keep their JSON Schema as is, in `parametersJsonSchema`.
fn write_declaration(t: &Tool) -> FunctionDeclaration {
    FunctionDeclaration {
        name: t.name.clone(),
        description: t.description.clone(),
        parameters: None,
        parameters_json_schema: Some(t.parameters.clone()),
        rest: Map::new(),
    }
}
