//! Mail for one-time codes and account notices: SMTP through lettre, or, with no SMTP
//! configured, `.eml` files in `<data dir>/outbox/` so that code login works on the
//! one-command start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sessiond_core::otp::{OtpCode, OtpPurpose};

use crate::config::SmtpUrl;

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

/// What a mail is about: one per code purpose, and the notice to an address an account
/// moved away from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Code(OtpPurpose),
    EmailChanged,
}

impl MailKind {
    const ALL: [MailKind; 5] = [
        MailKind::Code(OtpPurpose::Login),
        MailKind::Code(OtpPurpose::PasswordReset),
        MailKind::Code(OtpPurpose::VerifyEmail),
        MailKind::Code(OtpPurpose::ChangeEmail),
        MailKind::EmailChanged,
    ];

    /// The template files' name, without `.txt` / `.html`.
    fn stem(self) -> &'static str {
        match self {
            MailKind::Code(OtpPurpose::Login) => "otp",
            MailKind::Code(OtpPurpose::PasswordReset) => "password_reset",
            MailKind::Code(OtpPurpose::VerifyEmail) => "verify_email",
            MailKind::Code(OtpPurpose::ChangeEmail) => "change_email",
            MailKind::EmailChanged => "email_changed",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|k| *k == self)
            .expect("every kind is listed")
    }

    /// The built-in subject, text and HTML.
    fn defaults(self) -> (&'static str, &'static str, &'static str) {
        macro_rules! files {
            ($stem:literal, $subject:literal) => {
                (
                    $subject,
                    include_str!(concat!("../../templates/", $stem, ".txt")),
                    include_str!(concat!("../../templates/", $stem, ".html")),
                )
            };
        }
        match self {
            MailKind::Code(OtpPurpose::Login) => files!("otp", "Your {{app_name}} code: {{code}}"),
            MailKind::Code(OtpPurpose::PasswordReset) => {
                files!("password_reset", "Reset your {{app_name}} password")
            }
            MailKind::Code(OtpPurpose::VerifyEmail) => {
                files!("verify_email", "Confirm your email for {{app_name}}")
            }
            MailKind::Code(OtpPurpose::ChangeEmail) => {
                files!("change_email", "Confirm your new email for {{app_name}}")
            }
            MailKind::EmailChanged => {
                files!(
                    "email_changed",
                    "Your {{app_name}} email address was changed"
                )
            }
        }
    }
}

/// One kind's operator-replaceable subject and bodies. `{{code}}`, `{{minutes}}` and
/// `{{app_name}}` are substituted in all three.
#[derive(Debug, Clone)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every kind's template: the built-in ones, each body overridden by `<stem>.txt` /
/// `<stem>.html` found in the template folder (`otp.txt` for login codes, then
/// `password_reset`, `verify_email`, `change_email`, `email_changed`).
#[derive(Debug, Clone)]
pub struct Templates(Vec<Template>);

impl Templates {
    /// `login_subject` is the operator's subject for login codes (`otp.subject`).
    pub fn load(login_subject: &str, dir: Option<&Path>) -> Result<Self, MailConfigError> {
        let read = |name: String, default: &str| -> Result<String, MailConfigError> {
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
        let mut all = Vec::new();
        for kind in MailKind::ALL {
            let (subject, text, html) = kind.defaults();
            let subject = match kind {
                MailKind::Code(OtpPurpose::Login) => login_subject,
                _ => subject,
            };
            all.push(Template {
                subject: subject.to_owned(),
                text: read(format!("{}.txt", kind.stem()), text)?,
                html: read(format!("{}.html", kind.stem()), html)?,
            });
        }
        Ok(Self(all))
    }

    pub fn of(&self, kind: MailKind) -> &Template {
        &self.0[kind.index()]
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

    /// Mails `code` for `purpose`, valid for `valid_for`.
    pub async fn send_code(
        &self,
        to: &str,
        code: &OtpCode,
        valid_for: Duration,
        purpose: OtpPurpose,
    ) -> Result<(), MailError> {
        let minutes = valid_for.as_secs().div_ceil(60);
        self.send(to, MailKind::Code(purpose), code.expose(), minutes)
            .await
    }

    /// Tells `to` that the account moved away from it.
    pub async fn send_email_changed(&self, to: &str) -> Result<(), MailError> {
        self.send(to, MailKind::EmailChanged, "", 0).await
    }

    async fn send(
        &self,
        to: &str,
        kind: MailKind,
        code: &str,
        minutes: u64,
    ) -> Result<(), MailError> {
        let t = self.templates.of(kind);
        let html_app = html_escape(&self.app_name);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError(e.to_string()))?)
            .subject(Templates::render(&t.subject, code, minutes, &self.app_name))
            .multipart(MultiPart::alternative_plain_html(
                Templates::render(&t.text, code, minutes, &self.app_name),
                Templates::render(&t.html, code, minutes, &html_app),
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
        let all = Templates::load("Your {{app_name}} code", None).unwrap();
        for kind in MailKind::ALL {
            let t = all.of(kind);
            for part in [&t.subject, &t.text, &t.html] {
                let rendered = Templates::render(part, "123456", 10, "Acme");
                assert!(!rendered.contains("{{"), "{kind:?}: {rendered}");
            }
            if kind != MailKind::EmailChanged {
                assert!(Templates::render(&t.text, "123456", 10, "Acme").contains("123456"));
            }
        }
        let t = all.of(MailKind::Code(OtpPurpose::Login));
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
        let all = Templates::load("s", Some(dir.path())).unwrap();
        let t = all.of(MailKind::Code(OtpPurpose::Login));
        assert_eq!(Templates::render(&t.text, "42", 1, "x"), "Code: 42");
        assert!(
            t.html.contains("{{code}}"),
            "html falls back to the default"
        );
    }
}
