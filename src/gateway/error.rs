//! Every way the gateway itself can answer a request with an error, decided in one place: the
//! status, the message, `Retry-After`, and the trace outcome. The body is always in the shape
//! of the provider the client speaks, so its SDK raises its usual exception with this message.

use crate::domain::Outcome;
use crate::domain::Provider;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    #[error("Unknown endpoint. Check the base URL copied from the Antix portal.")]
    UnknownEndpoint,
    #[error("This endpoint has been archived and no longer accepts requests.")]
    Archived,
    #[error("Invalid request path: {0}.")]
    BadPath(&'static str),
    #[error(
        "No API key provided. Pass an Antix virtual key or your provider key as your SDK's API key."
    )]
    NoCredentials,
    #[error("The API key header is not valid text.")]
    MalformedCredentials,
    #[error("Invalid virtual key.")]
    UnknownVirtualKey,
    #[error("This virtual key has been revoked.")]
    RevokedVirtualKey,
    #[error("This virtual key has expired.")]
    ExpiredVirtualKey,
    #[error("This virtual key belongs to another organization than this endpoint.")]
    WrongOrganization,
    #[error("This virtual key is not allowed to use model `{0}`.")]
    ModelNotAllowed(String),
    #[error("This virtual key is not allowed to use this endpoint.")]
    EndpointNotAllowed,
    #[error(
        "The organization has no {0} credential configured; an admin can add one in the Antix portal under Credentials."
    )]
    NoProviderCredential(Provider),
    #[error(
        "Model `{0}` has no price in the catalog, so a virtual key with a spending limit cannot use it."
    )]
    UnpricedModel(String),
    #[error(
        "Cannot route model `{0}`: set the X-Antix-Provider header (openai, anthropic or gemini) or use a known model name."
    )]
    UnroutableModel(String),
    #[error(
        "Cannot route this request: the body has no `model` and there is no X-Antix-Provider header."
    )]
    NoModel,
    #[error(
        "The gateway is holding as much request and response data as it is allowed to; retry in a moment."
    )]
    Overloaded,
    #[error("Unknown X-Antix-Provider `{0}`: use openai, anthropic or gemini.")]
    UnknownProviderHeader(String),
    #[error(
        "This virtual key may not call `{0}`: Antix cannot meter what it costs, and the key has a budget, a model allow-list or a token limit. An admin can allow unmetered APIs on the key in the Antix portal."
    )]
    UnmeteredApi(String),
    #[error(
        "The request body cannot be read with certainty ({0}). A virtual key with limits needs a body the gateway can check."
    )]
    UnreadableBody(String),
    #[error(
        "The request names no model; a virtual key with limits needs one to check and price the call."
    )]
    ModelRequired,
    #[error(
        "Batch input file `{0}` was not uploaded through Antix by this organization, so its requests cannot be checked or priced. Upload it through this endpoint with a virtual key first."
    )]
    UnknownBatchInput(String),
    #[error(
        "This endpoint accepts Antix virtual keys only: an admin turned off provider keys and OAuth tokens for it."
    )]
    PassthroughDisabled,
    #[error("Request body is larger than this gateway's limit of {0} bytes.")]
    BodyTooLarge(u64),
    #[error("Could not read the request body: {0}.")]
    BadRequestBody(String),
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{message}")]
    BudgetExceeded {
        message: String,
        retry_after_secs: u64,
    },
    #[error("The gateway cannot reach its database right now; retry shortly.")]
    StoreUnavailable,
    #[error("Could not reach the upstream provider: {0}.")]
    UpstreamUnreachable(String),
    #[error("The upstream provider did not respond in time.")]
    UpstreamTimeout,
    #[error("The upstream provider answered HTTP {status} with a body that is not a JSON error.")]
    UpstreamBadResponse { status: u16 },
    #[error("The gateway is shutting down; retry against another instance.")]
    ShuttingDown,
    /// A request `multi` must translate for another provider, with a feature that provider
    /// cannot honour (400), or an answer the client's shape cannot carry (502).
    #[error("{0}")]
    Translation(crate::translate::TranslateError),
    #[error(
        "This request is in another provider's format than {0}'s, so Antix translates it, which takes an Antix virtual key (the organization's {0} credential is used): a provider key or OAuth token passes through to its own provider's API only."
    )]
    TranslationNeedsKey(Provider),
    #[error("X-Antix-Fallbacks: {0}")]
    BadFallbacks(String),
}

impl GatewayError {
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::UnknownEndpoint => 404,
            GatewayError::Archived => 410,
            GatewayError::BadPath(_)
            | GatewayError::NoProviderCredential(_)
            | GatewayError::UnroutableModel(_)
            | GatewayError::NoModel
            | GatewayError::UnknownProviderHeader(_)
            | GatewayError::BadRequestBody(_)
            | GatewayError::UnreadableBody(_)
            | GatewayError::TranslationNeedsKey(_)
            | GatewayError::BadFallbacks(_)
            | GatewayError::ModelRequired => 400,
            GatewayError::NoCredentials
            | GatewayError::MalformedCredentials
            | GatewayError::UnknownVirtualKey
            | GatewayError::RevokedVirtualKey
            | GatewayError::ExpiredVirtualKey => 401,
            GatewayError::WrongOrganization
            | GatewayError::ModelNotAllowed(_)
            | GatewayError::EndpointNotAllowed
            | GatewayError::UnpricedModel(_)
            | GatewayError::UnmeteredApi(_)
            | GatewayError::UnknownBatchInput(_)
            | GatewayError::PassthroughDisabled => 403,
            GatewayError::BodyTooLarge(_) => 413,
            GatewayError::RateLimited { .. } | GatewayError::BudgetExceeded { .. } => 429,
            GatewayError::StoreUnavailable
            | GatewayError::ShuttingDown
            | GatewayError::Overloaded => 503,
            GatewayError::UpstreamUnreachable(_) => 502,
            GatewayError::UpstreamBadResponse { status } => {
                if (400..500).contains(status) {
                    *status
                } else {
                    502
                }
            }
            GatewayError::UpstreamTimeout => 504,
            GatewayError::Translation(e) => e.status(),
        }
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            GatewayError::RateLimited {
                retry_after_secs, ..
            }
            | GatewayError::BudgetExceeded {
                retry_after_secs, ..
            } => (*retry_after_secs > 0).then_some(*retry_after_secs),
            GatewayError::StoreUnavailable
            | GatewayError::ShuttingDown
            | GatewayError::Overloaded => Some(1),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            GatewayError::UpstreamUnreachable(_) | GatewayError::UpstreamBadResponse { .. } => {
                Outcome::UpstreamError
            }
            GatewayError::Translation(e) if e.status() >= 500 => Outcome::UpstreamError,
            GatewayError::UpstreamTimeout => Outcome::Timeout,
            GatewayError::ShuttingDown => Outcome::ShutdownAborted,
            _ => Outcome::Rejected,
        }
    }

    /// The JSON body in `family`'s error shape.
    pub fn body(&self, family: Provider) -> bytes::Bytes {
        crate::providers::error_body(family, self.status(), &self.to_string())
    }

    /// A complete HTTP response for this error.
    pub fn response(&self, family: Provider) -> http::Response<super::ProxyBody> {
        let mut builder = http::Response::builder()
            .status(self.status())
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(secs) = self.retry_after_secs() {
            builder = builder.header(http::header::RETRY_AFTER, secs.to_string());
        }
        // The SDKs retry 429 and 5xx by default; tell them when waiting cannot help (a budget
        // that resets tomorrow) and when it will (a rate limit, a database blip).
        let retry = matches!(
            self,
            GatewayError::RateLimited { .. }
                | GatewayError::StoreUnavailable
                | GatewayError::ShuttingDown
                | GatewayError::Overloaded
        );
        builder = builder.header("x-should-retry", if retry { "true" } else { "false" });
        builder
            .body(super::ProxyBody::full(self.body(family)))
            .unwrap_or_else(|_| http::Response::new(super::ProxyBody::empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_shapes() {
        let e = GatewayError::Archived;
        assert_eq!(e.status(), 410);
        let v: serde_json::Value = serde_json::from_slice(&e.body(Provider::Anthropic)).unwrap();
        assert_eq!(v["type"], "error");
        assert!(v["error"]["message"].as_str().unwrap().contains("archived"));
        let e = GatewayError::BudgetExceeded {
            message: "Daily budget of $1 reached; resets at 00:00 UTC.".into(),
            retry_after_secs: 3600,
        };
        let r = e.response(Provider::OpenAi);
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "3600");
        assert_eq!(GatewayError::StoreUnavailable.status(), 503);
        assert_eq!(
            GatewayError::UpstreamBadResponse { status: 429 }.status(),
            429
        );
        assert_eq!(
            GatewayError::UpstreamBadResponse { status: 500 }.status(),
            502
        );
    }
}
