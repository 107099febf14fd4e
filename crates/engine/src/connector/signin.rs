//! Browser sign-in for a desktop app: OAuth2 authorization code with PKCE (RFC 7636) and a
//! loopback redirect (RFC 8252 §7.3). The app opens [`Authorization::url`] in the system
//! browser; the provider sends the browser back to a one-shot listener on 127.0.0.1, which
//! hands over the code; the code and the verifier are exchanged for tokens.
//!
//! The verifier never leaves this process except to the token endpoint, and the `state`
//! parameter ties the redirect to this request, so another page cannot inject its own code.

use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use crate::error::{Error, Result};
use crate::secrets::Secret;

/// The path the provider redirects to on the loopback listener.
const CALLBACK: &str = "/callback";
/// A browser that connects and then says nothing must not hold the listener.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Request heads larger than this are not a redirect from a provider.
const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// What the browser brought back.
#[derive(Debug)]
pub struct Callback {
    pub code: Secret,
    pub redirect_uri: String,
    pub verifier: Secret,
}

/// A sign-in waiting for the browser to come back.
#[derive(Debug)]
pub struct Authorization {
    url: Url,
    redirect_uri: String,
    state: String,
    verifier: Secret,
    listener: TcpListener,
}

fn random_b64(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::SignInFailed(format!("no randomness for PKCE: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// RFC 7636 §4.2, S256.
fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Authorization {
    /// Bind the loopback listener on an ephemeral port and build the authorization URL.
    pub async fn begin(
        authorize_url: &Url,
        client_id: &str,
        scope: Option<&str>,
    ) -> Result<Authorization> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
            Error::SignInFailed(format!(
                "could not listen on 127.0.0.1 for the redirect: {e}"
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::SignInFailed(e.to_string()))?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK}");
        // 32 random bytes: a 43-character verifier, the minimum RFC 7636 allows and 256 bits.
        let verifier = Secret::new(random_b64(32)?);
        let state = random_b64(16)?;
        let mut url = authorize_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_challenge", &challenge(verifier.expose()))
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state);
            if let Some(scope) = scope {
                q.append_pair("scope", scope);
            }
        }
        Ok(Authorization {
            url,
            redirect_uri,
            state,
            verifier,
            listener,
        })
    }

    /// The page to open in the system browser. It holds no secret: the challenge is a hash.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Wait for the provider's redirect. Requests for other paths (a browser's favicon) are
    /// answered 404 and waiting goes on; the callback itself ends the wait either way.
    pub async fn callback(self) -> Result<Callback> {
        loop {
            let (stream, _) =
                self.listener.accept().await.map_err(|e| {
                    Error::SignInFailed(format!("the redirect listener failed: {e}"))
                })?;
            if let Some(outcome) = self.answer(stream).await {
                return outcome.map(|code| Callback {
                    code,
                    redirect_uri: self.redirect_uri,
                    verifier: self.verifier,
                });
            }
        }
    }

    /// Read one request; `None` when it was not the callback.
    async fn answer(&self, mut stream: TcpStream) -> Option<Result<Secret>> {
        let target = match tokio::time::timeout(REQUEST_READ_TIMEOUT, read_target(&mut stream))
            .await
        {
            Ok(Some(t)) => t,
            _ => {
                let _ = respond(&mut stream, "400 Bad Request", "Not a sign-in redirect.").await;
                return None;
            }
        };
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if path != CALLBACK {
            let _ = respond(&mut stream, "404 Not Found", "Nothing here.").await;
            return None;
        }
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        let outcome = if params.get("state") != Some(&self.state) {
            Err(Error::SignInFailed(
                "the browser came back without this sign-in's state; it was not started here"
                    .into(),
            ))
        } else if let Some(error) = params.get("error") {
            let why = match params.get("error_description") {
                Some(d) => format!("{error} ({d})"),
                None => error.clone(),
            };
            Err(Error::SignInFailed(format!("the provider refused: {why}")))
        } else if let Some(code) = params.get("code").filter(|c| !c.is_empty()) {
            Ok(Secret::new(code.clone()))
        } else {
            Err(Error::SignInFailed(
                "the provider's redirect carried no code".into(),
            ))
        };
        let page = match &outcome {
            Ok(_) => "Signed in. You can close this tab and return to Syncdesk.".to_string(),
            Err(e) => format!("Sign-in did not complete: {e}. Return to Syncdesk to try again."),
        };
        let status = if outcome.is_ok() {
            "200 OK"
        } else {
            "400 Bad Request"
        };
        let _ = respond(&mut stream, status, &page).await;
        Some(outcome)
    }
}

/// The request target of a `GET`, once the whole head has arrived.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_string()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Syncdesk</title></head>\
         <body style=\"font-family:sans-serif;margin:3rem\"><p>{}</p></body></html>",
        html_escape(text)
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_e1_the_challenge_is_rfc_7636s_s256() {
        // The example of RFC 7636 Appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[tokio::test]
    async fn r_e1_the_authorization_url_carries_pkce_and_a_loopback_redirect() {
        let base = Url::parse("http://127.0.0.1:9/oauth/authorize?audience=x").unwrap();
        let a = Authorization::begin(&base, "cid", Some("read"))
            .await
            .unwrap();
        let u = Url::parse(a.url()).unwrap();
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(q["audience"], "x", "the provider's own parameters stay");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], challenge(a.verifier.expose()));
        assert_eq!(a.verifier.expose().len(), 43);
        assert!(
            !a.url().contains(a.verifier.expose()),
            "the verifier stays here"
        );
        let port = a.listener.local_addr().unwrap().port();
        assert_eq!(
            q["redirect_uri"],
            format!("http://127.0.0.1:{port}/callback")
        );
        assert_eq!(q["state"], a.state);
        let other = Authorization::begin(&base, "cid", None).await.unwrap();
        assert_ne!(other.state, a.state);
        assert_ne!(other.verifier.expose(), a.verifier.expose());
    }
}
