//! SigV4 as the official SDK signs (through `aws-requests-auth`): region `""`, service `s3`,
//! only `host;x-amz-date` signed, the payload hash taken over every body (the `GET ?data` body
//! too) and sent, unsigned, as `x-amz-content-sha256`. The time is passed in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    sign as sigv4_sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::request::{Endpoint, Request};

/// An access key and its secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key: String,
    secret_key: String,
}

impl Credentials {
    /// Credentials from an access key and a secret key.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }

    /// The access key (public: it appears in every `Authorization` header).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Signs `request` for `endpoint` at `unix_seconds`: adds `Authorization`, `x-amz-date` and
/// `x-amz-content-sha256`. The host must send `Host: endpoint.authority()`.
pub fn sign(
    request: &mut Request,
    endpoint: &Endpoint,
    credentials: &Credentials,
    unix_seconds: u64,
) -> Result<()> {
    let signing_error = |e: &dyn std::fmt::Display| Error::Signing(e.to_string());
    let identity = aws_credential_types::Credentials::new(
        credentials.access_key.clone(),
        credentials.secret_key.clone(),
        None,
        None,
        "pocaduck-edge",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let time: SystemTime = UNIX_EPOCH + Duration::from_secs(unix_seconds);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
    let url = endpoint.url(request);
    let authority = endpoint.authority();
    let signable = SignableRequest::new(
        request.method.as_str(),
        &url,
        std::iter::once(("host", authority.as_str())),
        SignableBody::Bytes(&request.body),
    )
    .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sigv4_sign(signable, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();
    let mut authorization = None;
    let mut date = None;
    for (name, value) in instructions.headers() {
        match name {
            "authorization" => authorization = Some(value.to_owned()),
            "x-amz-date" => date = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(authorization), Some(date)) = (authorization, date) else {
        return Err(Error::Signing(
            "the signer returned no Authorization".into(),
        ));
    };
    request.header("Authorization", authorization);
    request.header("x-amz-date", date);
    request.header("x-amz-content-sha256", payload_hash(&request.body));
    Ok(())
}

/// The lowercase hex SHA-256 of a body, as in `x-amz-content-sha256`.
pub fn payload_hash(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", Credentials::new("AKIAEXAMPLE", "SECRETEXAMPLE"));
        assert!(shown.contains("AKIAEXAMPLE"));
        assert!(!shown.contains("SECRETEXAMPLE"), "{shown}");
    }

    #[test]
    fn payload_hash_of_nothing_is_the_empty_string_hash() {
        assert_eq!(
            payload_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
