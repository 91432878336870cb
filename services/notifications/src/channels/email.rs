//! E-mail notifications over SMTP (lettre): one multipart/alternative message, plain text
//! and HTML, framed in the person's language (English, French, Italian, Danish, Polish).

use chorus_kit::config::NotificationsConfig;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use std::time::Duration;

/// The words around a notification, per language.
pub struct Frame {
    pub greeting: &'static str,
    pub open: &'static str,
    pub footer: &'static str,
}

/// The frame for a language tag (`fr`, `fr-CA`, …); English when the language is unknown.
pub fn frame(language: &str) -> Frame {
    let primary = language
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match primary.as_str() {
        "fr" => Frame {
            greeting: "Bonjour",
            open: "Ouvrir Chorus",
            footer: "Vous recevez cet e-mail selon vos préférences de notification dans Chorus ; modifiez-les dans Paramètres › Notifications.",
        },
        "it" => Frame {
            greeting: "Ciao",
            open: "Apri Chorus",
            footer: "Ricevi questa e-mail in base alle tue preferenze di notifica in Chorus; puoi modificarle in Impostazioni › Notifiche.",
        },
        "da" => Frame {
            greeting: "Hej",
            open: "Åbn Chorus",
            footer: "Du får denne e-mail på grund af dine notifikationsindstillinger i Chorus; du kan ændre dem under Indstillinger › Notifikationer.",
        },
        "pl" => Frame {
            greeting: "Cześć",
            open: "Otwórz Chorus",
            footer: "Otrzymujesz tę wiadomość zgodnie z ustawieniami powiadomień w Chorus; możesz je zmienić w Ustawienia › Powiadomienia.",
        },
        _ => Frame {
            greeting: "Hello",
            open: "Open Chorus",
            footer: "You receive this e-mail because of your notification preferences in Chorus; change them under Settings › Notifications.",
        },
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The text and HTML bodies of one notification e-mail.
pub fn render(
    language: &str,
    display_name: &str,
    title: &str,
    body: &str,
    link: &str,
) -> (String, String) {
    let frame = frame(language);
    let text = format!(
        "{greeting} {display_name},\n\n{title}\n\n{body}\n\n{open}: {link}\n\n-- \n{footer}\n",
        greeting = frame.greeting,
        open = frame.open,
        footer = frame.footer,
    );
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{title_html}</title></head>\
<body style=\"font-family:sans-serif;line-height:1.5;color:#1f2933\">\
<p>{greeting} {name_html},</p><h1 style=\"font-size:1.2em\">{title_html}</h1><p>{body_html}</p>\
<p><a href=\"{link_html}\" style=\"background:#2457d6;color:#fff;padding:8px 16px;border-radius:4px;text-decoration:none\">{open}</a></p>\
<hr><p style=\"font-size:0.85em;color:#616e7c\">{footer}</p></body></html>\n",
        lang = escape(language),
        greeting = frame.greeting,
        name_html = escape(display_name),
        title_html = escape(title),
        body_html = escape(body).replace('\n', "<br>\n"),
        link_html = escape(link),
        open = frame.open,
        footer = frame.footer,
    );
    (text, html)
}

/// What an SMTP send achieved.
pub enum Sent {
    Accepted,
    /// The server refused for good (5xx): the address or the message is wrong.
    Refused(String),
    /// Worth another try later (4xx, network, timeout).
    Failed(String),
}

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    link: String,
}

impl Mailer {
    /// The mailer of the configured SMTP server; `None` when e-mail is not configured.
    pub fn from_config(
        config: &NotificationsConfig,
        public_url: &str,
    ) -> anyhow::Result<Option<Mailer>> {
        let Some(url) = &config.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|error| anyhow::anyhow!("notifications.smtp_url is not usable: {error}"))?
            .timeout(Some(Duration::from_millis(config.channel_timeout_ms)))
            .build();
        let from: Mailbox = config.email_from.parse().map_err(|error| {
            anyhow::anyhow!(
                "notifications.email_from {:?} is not a mailbox: {error}",
                config.email_from
            )
        })?;
        Ok(Some(Mailer {
            transport,
            from,
            link: format!("{}/", public_url.trim_end_matches('/')),
        }))
    }

    /// Sends one notification; `message_id` makes the e-mail's Message-ID stable, so a
    /// retried send is recognisable as the same message.
    pub async fn send(
        &self,
        message_id: &str,
        to: &str,
        display_name: &str,
        language: &str,
        title: &str,
        body: &str,
    ) -> Sent {
        let to: Mailbox = match format!("{} <{to}>", display_name.replace(['"', '<', '>'], ""))
            .parse()
            .or_else(|_| to.parse())
        {
            Ok(mailbox) => mailbox,
            Err(error) => return Sent::Refused(format!("address {to:?} is not valid: {error}")),
        };
        let (text, html) = render(language, display_name, title, body, &self.link);
        let part = |content_type: ContentType, content: String| {
            SinglePart::builder().header(content_type).body(
                Body::new_with_encoding(content.into_bytes(), ContentTransferEncoding::Base64)
                    .expect("base64 encodes any bytes"),
            )
        };
        let built = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(title)
            .message_id(Some(format!("<{message_id}@chorus>")))
            .multipart(
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, text))
                    .singlepart(part(ContentType::TEXT_HTML, html)),
            );
        let message = match built {
            Ok(message) => message,
            Err(error) => return Sent::Refused(format!("message could not be built: {error}")),
        };
        match self.transport.send(message).await {
            Ok(_) => Sent::Accepted,
            Err(error) if error.is_permanent() => Sent::Refused(error.to_string()),
            Err(error) => Sent::Failed(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_language_and_fall_back_to_english() {
        assert_eq!(frame("fr-CA").greeting, "Bonjour");
        assert_eq!(frame("pl").open, "Otwórz Chorus");
        assert_eq!(frame("xx").greeting, "Hello");
        assert_eq!(frame("").greeting, "Hello");
    }

    #[test]
    fn html_escapes_what_people_wrote() {
        let (text, html) = render(
            "en",
            "Ann <b>",
            "A & B",
            "<script>x</script>",
            "https://c.example/",
        );
        assert!(text.contains("Hello Ann <b>,"));
        assert!(html.contains("Hello Ann &lt;b&gt;,"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("<title>A &amp; B</title>"));
        assert!(!html.contains("<script>"));
    }
}
