//! The other end of the API: what `projector status` and `projector pause|resume|reset|rebuild`
//! use to talk to a running projector. Bounded like every call out: a timeout per request and
//! a cap on the answer read.

use std::time::Duration;

use anyhow::{Context, bail};

/// Longest one request may take (a reset waits for the batch in flight and a rollback for its
/// kept module to load).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// A running projector's API.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// The API at `address` (`http://HOST:PORT`, or `HOST:PORT`), sending `token` if given.
    pub fn new(address: &str, token: Option<String>) -> anyhow::Result<Client> {
        let base = if address.contains("://") {
            address.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", address.trim_end_matches('/'))
        };
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Client { base, token, http })
    }

    /// `GET path`: its JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// `POST path` with `body`: its JSON.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let mut response = request.send().await.with_context(|| {
            format!(
                "reaching the projector's API at {} (is `projector run` or `dev` running, and \
                 is that its --api address?)",
                self.base
            )
        })?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                bail!("the API's answer is over {MAX_ANSWER_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let value: serde_json::Value = serde_json::from_slice(&body).with_context(|| {
            format!(
                "the API at {} answered {status} with something that is not JSON",
                self.base
            )
        })?;
        if !status.is_success() {
            let reason = value["error"]
                .as_str()
                .map_or_else(|| value.to_string(), String::from);
            bail!("{reason} (HTTP {status})");
        }
        Ok(value)
    }
}
