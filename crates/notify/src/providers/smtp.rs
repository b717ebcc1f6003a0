//! SMTP submission through lettre: `smtp://` uses STARTTLS when the server offers it
//! (AUTH only when the URL carries credentials), `smtps://` is implicit TLS. Replies
//! of class 4 are retried, class 5 are final.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::provider::{ConfigError, EmailMessage, EmailProvider, Outcome};

pub struct SmtpProvider {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl SmtpProvider {
    pub fn new(
        url: &str,
        from: &str,
        ca_pem: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| ConfigError::new("url", e.to_string()))?;
        let implicit = match parsed.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => {
                return Err(ConfigError::new(
                    "url",
                    "url must be smtp://... or smtps://...",
                ))
            }
        };
        let host = parsed
            .host_str()
            .ok_or_else(|| ConfigError::new("url", "url needs a host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        let port = parsed.port().unwrap_or(if implicit { 465 } else { 587 });
        let from: Mailbox = from
            .parse()
            .map_err(|e| ConfigError::new("from", format!("{e}")))?;
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(pem) = ca_pem {
            let cert = Certificate::from_pem(pem.as_bytes())
                .map_err(|e| ConfigError::new("ca_pem", e.to_string()))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| ConfigError::new("ca_pem", e.to_string()))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(timeout))
            .tls(if implicit {
                Tls::Wrapper(tls)
            } else {
                Tls::Opportunistic(tls)
            });
        if !parsed.username().is_empty() {
            let user = percent_decode(parsed.username());
            let pass = percent_decode(parsed.password().unwrap_or_default());
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let domain = from.email.domain().to_owned();
        Ok(Self {
            transport: builder.build(),
            from,
            domain,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl EmailProvider for SmtpProvider {
    async fn send(&self, message: &EmailMessage) -> Outcome {
        let to: Mailbox = match message.to.parse() {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("bad recipient: {e}"),
                }
            }
        };
        let message_id = format!("<{}@{}>", message.reference, self.domain);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&message.subject)
            .message_id(Some(message_id.clone()));
        let built = match (&message.text, &message.html) {
            (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
                text.clone(),
                html.clone(),
            )),
            (None, Some(html)) => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
            (Some(text), None) => builder.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text.clone()),
            ),
            (None, None) => {
                return Outcome::Failed {
                    reason: "an email needs a text or an html body".into(),
                }
            }
        };
        let email = match built {
            Ok(e) => e,
            Err(e) => {
                return Outcome::Failed {
                    reason: format!("message: {e}"),
                }
            }
        };
        match self.transport.send(email).await {
            Ok(_) => Outcome::Sent {
                provider_message_id: Some(message_id),
            },
            Err(e) if e.is_permanent() => Outcome::Failed {
                reason: format!("smtp: {e}"),
            },
            // Class 4 replies, timeouts, connection and TLS trouble: try again later.
            Err(e) => Outcome::Retry {
                reason: format!("smtp: {e}"),
                retry_after: None,
            },
        }
    }
}
