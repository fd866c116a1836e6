//! The authorization code flow with PKCE against the configured provider, through the
//! `openidconnect` crate: discovery (`<issuer>/.well-known/openid-configuration` and its JWKS,
//! cached for [`DISCOVERY_TTL`]), the authorization URL (S256 code challenge, `state`, `nonce`),
//! the code exchange and the ID token's validation (signature by the provider's keys, `iss`,
//! `aud`, `exp`, `nonce`). The provider is reached with the workspace's reqwest, never following
//! redirects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};

use super::config::OidcConfig;
use super::{OidcError, OidcIdentity};

/// How long a discovery document and its keys are used before they are read again (a provider
/// rotating its keys is followed within this).
pub const DISCOVERY_TTL: Duration = Duration::from_secs(600);

/// Longest the provider may take to answer one request.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest answer read from the provider.
const MAX_ANSWER_BYTES: usize = 1 << 20;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What a sign-in in progress must remember between the redirect to the provider and the
/// callback: the `state` to compare, the `nonce` the ID token must carry, the PKCE verifier.
#[derive(Debug)]
pub struct Pending {
    /// The `state` sent.
    pub state: String,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

/// The provider as discovered, and when.
struct Discovered {
    client: Client,
    at: Instant,
}

/// The relying party: configuration, HTTP client, the cached discovery.
pub struct Flow {
    config: OidcConfig,
    secret: ClientSecret,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("issuer", &self.config.issuer)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error("answer larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error(transparent)]
    Http(#[from] openidconnect::http::Error),
}

async fn send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let answer = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(HttpError::TooLarge);
    }
    let mut response = openidconnect::http::Response::builder()
        .status(status)
        .body(bytes.to_vec())?;
    *response.headers_mut() = headers;
    Ok(response)
}

impl Flow {
    /// The flow for `config` with its client secret (read by the caller).
    pub fn new(config: OidcConfig, secret: String) -> Result<Flow, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| format!("oidc: HTTP client: {e}"))?;
        IssuerUrl::new(config.issuer.clone()).map_err(|e| format!("oidc: issuer: {e}"))?;
        RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| format!("oidc: redirect_url: {e}"))?;
        Ok(Flow {
            config,
            secret: ClientSecret::new(secret),
            http,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The discovered client: the cached one while younger than [`DISCOVERY_TTL`], else read
    /// again (the document, then its JWKS).
    async fn client(&self) -> Result<Arc<Discovered>, OidcError> {
        let mut cached = self.discovered.lock().await;
        if let Some(d) = cached.as_ref().filter(|d| d.at.elapsed() < DISCOVERY_TTL) {
            return Ok(d.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::provider(format!("issuer: {e}")))?;
        let http = |request| send(self.http.clone(), request);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                OidcError::provider(format!(
                    "the provider's discovery document ({}/.well-known/openid-configuration) cannot be read: {}",
                    self.config.issuer.trim_end_matches('/'),
                    error_chain(&e)
                ))
            })?;
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|e| OidcError::provider(format!("redirect_url: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(self.secret.clone()),
        )
        .set_redirect_uri(redirect);
        let discovered = Arc::new(Discovered {
            client,
            at: Instant::now(),
        });
        *cached = Some(discovered.clone());
        Ok(discovered)
    }

    /// Where to send the browser to sign in, and what the callback must find again.
    pub async fn authorize(&self) -> Result<(String, Pending), OidcError> {
        let discovered = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = discovered.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.config.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce,
            verifier,
        };
        Ok((url.to_string(), pending))
    }

    /// Exchanges `code` for tokens (with the PKCE verifier) and validates the ID token against
    /// `pending`'s nonce: who signed in.
    pub async fn finish(&self, pending: Pending, code: String) -> Result<OidcIdentity, OidcError> {
        let discovered = self.client().await?;
        let http = |request| send(self.http.clone(), request);
        let answer = discovered
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::provider(format!("the provider names no token endpoint: {e}")))?
            .set_pkce_verifier(pending.verifier)
            .request_async(&http)
            .await
            .map_err(|e| {
                OidcError::provider(format!(
                    "the provider refused the code: {}",
                    error_chain(&e)
                ))
            })?;
        let id_token = answer
            .id_token()
            .ok_or_else(|| OidcError::provider("the provider's answer has no ID token".into()))?;
        let verifier = discovered.client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &pending.nonce)
            .map_err(|e| OidcError::invalid_token(error_chain(&e)))?;
        // The token is verified: its payload is what the provider signed. The groups claim is
        // read from it by name (its name is configurable; openidconnect knows only standard
        // claims).
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .unwrap_or_default();
        let groups = match &payload[&self.config.groups_claim] {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(many) => many
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(OidcIdentity::new(
            claims.subject().as_str(),
            claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
            claims.email().map(|e| e.as_str()),
            claims.email_verified(),
            groups,
        ))
    }
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
