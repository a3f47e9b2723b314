//! Mail for one-time codes: SMTP through lettre, or, with no SMTP configured, `.eml`
//! files in `<data dir>/outbox/` so that code login works on the one-command start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sessiond_core::otp::OtpCode;

use crate::config::SmtpUrl;

const DEFAULT_TEXT: &str = include_str!("../../templates/otp.txt");
const DEFAULT_HTML: &str = include_str!("../../templates/otp.html");
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("`smtp_url` is invalid: {0}")]
    SmtpUrl(String),
    #[error("`mail_from` is not a mailbox (e.g. `App <no-reply@example.com>`): {0}")]
    From(String),
    #[error("otp template {path}: {source}")]
    Template {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("outbox folder {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("mail could not be sent: {0}")]
pub struct MailError(String);

/// The operator-replaceable bodies. `{{code}}`, `{{minutes}}` and `{{app_name}}` are
/// substituted; the subject template takes the same placeholders.
#[derive(Debug, Clone)]
pub struct Templates {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// The built-in templates, overridden by `otp.txt` / `otp.html` found in `dir`.
    pub fn load(subject: &str, dir: Option<&Path>) -> Result<Self, MailConfigError> {
        let read = |name: &str, default: &str| -> Result<String, MailConfigError> {
            let Some(dir) = dir else {
                return Ok(default.to_owned());
            };
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(default.to_owned()),
                Err(source) => Err(MailConfigError::Template { path, source }),
            }
        };
        Ok(Self {
            subject: subject.to_owned(),
            text: read("otp.txt", DEFAULT_TEXT)?,
            html: read("otp.html", DEFAULT_HTML)?,
        })
    }

    fn render(template: &str, code: &str, minutes: u64, app_name: &str) -> String {
        template
            .replace("{{code}}", code)
            .replace("{{minutes}}", &minutes.to_string())
            .replace("{{app_name}}", app_name)
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(AsyncFileTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    app_name: String,
    templates: Templates,
}

impl Mailer {
    /// SMTP when `smtp_url` is set (`smtp://user:pass@host:587?tls=required` for STARTTLS,
    /// `smtps://…:465` for implicit TLS, `smtp://host:25` for a plain local relay);
    /// otherwise an outbox folder.
    pub fn new(
        smtp_url: Option<&SmtpUrl>,
        outbox: &Path,
        from: &str,
        app_name: &str,
        templates: Templates,
    ) -> Result<Self, MailConfigError> {
        let from: Mailbox = from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailConfigError::From(e.to_string()))?;
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                    .map_err(|e| MailConfigError::SmtpUrl(e.to_string()))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(outbox).map_err(|source| MailConfigError::Outbox {
                    path: outbox.to_owned(),
                    source,
                })?;
                tracing::warn!(
                    outbox = %outbox.display(),
                    "no SMTP server configured (smtp_url): one-time codes are written to the outbox folder, not delivered"
                );
                Transport::Outbox(AsyncFileTransport::new(outbox))
            }
        };
        Ok(Self {
            transport,
            from,
            app_name: app_name.to_owned(),
            templates,
        })
    }

    pub fn delivers(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// Whether mail can be addressed to `to` at all. Sessiond's address rule is a little
    /// wider than what mail systems take (a local part over 64 characters, RFC 5321);
    /// such an address gets its challenge but no mail, as an unknown one would.
    pub fn can_address(to: &str) -> bool {
        to.parse::<lettre::Address>().is_ok()
    }

    pub async fn send_code(
        &self,
        to: &str,
        code: &OtpCode,
        valid_for: Duration,
    ) -> Result<(), MailError> {
        let minutes = valid_for.as_secs().div_ceil(60);
        let t = &self.templates;
        let html_app = html_escape(&self.app_name);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError(e.to_string()))?)
            .subject(Templates::render(
                &t.subject,
                code.expose(),
                minutes,
                &self.app_name,
            ))
            .multipart(MultiPart::alternative_plain_html(
                Templates::render(&t.text, code.expose(), minutes, &self.app_name),
                Templates::render(&t.html, code.expose(), minutes, &html_app),
            ))
            .map_err(|e| MailError(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError(e.to_string())),
            Transport::Outbox(outbox) => outbox
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError(e.to_string())),
        }
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_every_placeholder() {
        let t = Templates::load("Your {{app_name}} code", None).unwrap();
        let text = Templates::render(&t.text, "123456", 10, "Acme");
        assert!(text.contains("123456") && text.contains("10 minutes") && text.contains("Acme"));
        assert!(!text.contains("{{"));
        let html = Templates::render(&t.html, "123456", 10, "Acme");
        assert!(html.contains("123456") && !html.contains("{{"));
    }

    #[test]
    fn operator_templates_replace_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("otp.txt"), "Code: {{code}}").unwrap();
        let t = Templates::load("s", Some(dir.path())).unwrap();
        assert_eq!(Templates::render(&t.text, "42", 1, "x"), "Code: 42");
        assert!(
            t.html.contains("{{code}}"),
            "html falls back to the default"
        );
    }
}
