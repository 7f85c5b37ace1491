//! The OpenTelemetry export's settings (`ANTIX_OTEL_*`), read like the OTLP exporter's own
//! variables.

use secrecy::SecretString;

/// What the exporter needs, from the configuration.
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// The collector's OTLP/HTTP traces URL (`…/v1/traces`).
    pub traces_url: String,
    /// Headers sent with every export (a vendor's API key, say): secret.
    pub headers: Vec<(String, SecretString)>,
    pub service_name: String,
    /// Send request and response bodies as span events.
    pub capture_bodies: bool,
}

/// Reads `ANTIX_OTEL_ENDPOINT` (a collector's base URL like `http://collector:4318`, or its full
/// `/v1/traces` URL) into the traces URL.
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let e = endpoint.trim().trim_end_matches('/');
    let url = url::Url::parse(e)
        .map_err(|_| "Use the collector's URL, like http://collector:4318.".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("Use an http:// or https:// collector URL.".into());
    }
    Ok(if e.ends_with("/v1/traces") {
        e.to_owned()
    } else {
        format!("{e}/v1/traces")
    })
}

/// Reads `key=value,key2=value2` (the format of `OTEL_EXPORTER_OTLP_HEADERS`).
pub fn parse_headers(raw: &str) -> Result<Vec<(String, SecretString)>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("{p:?} is not key=value"))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty()
                || http::HeaderName::from_bytes(k.as_bytes()).is_err()
                || http::HeaderValue::from_str(v).is_err()
            {
                return Err(format!("{k:?} cannot be sent as a header"));
            }
            Ok((k.to_owned(), SecretString::from(v)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn endpoints_and_headers_are_read_like_the_otlp_variables() {
        assert_eq!(
            traces_url("http://c:4318").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://c:4318/").unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://c/otlp/v1/traces").unwrap(),
            "https://c/otlp/v1/traces"
        );
        assert!(traces_url("c:4318").is_err());
        let h: Vec<(String, String)> = parse_headers("x-api-key = abc, dataset=llm")
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.expose_secret().to_owned()))
            .collect();
        assert_eq!(
            h,
            [
                ("x-api-key".to_owned(), "abc".to_owned()),
                ("dataset".to_owned(), "llm".to_owned())
            ]
        );
        assert!(parse_headers("novalue").is_err());
        assert!(parse_headers("bad header=x").is_err());
    }
}
