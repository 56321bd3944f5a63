//! SNS topics and `Publish`, in SNS's query protocol as aws-sdk-sns speaks it: a POST of
//! form fields (`Action=Publish&TopicArn=...&Message=...&Subject=...`), signed for `sns`,
//! answered in XML. Topics are made with [`crate::EmrEmulator::create_topic`]; a publish
//! to another topic is `NotFound`; [`crate::EmrEmulator::fail_publishes`] makes the next
//! publishes fail with `InternalError` (HTTP 500).

use crate::cluster::random_id;
use std::collections::BTreeMap;

/// A message published to a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    pub subject: Option<String>,
    pub message: String,
}

#[derive(Default)]
pub(crate) struct Topics {
    topics: BTreeMap<String, Vec<Published>>,
    /// Publishes still to fail.
    pub(crate) failures: u32,
}

pub(crate) struct SnsError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl Topics {
    pub(crate) fn create(&mut self, region: &str, name: &str) -> String {
        let arn = format!("arn:aws:sns:{region}:123456789012:{name}");
        self.topics.entry(arn.clone()).or_default();
        arn
    }

    pub(crate) fn messages(&self, arn: &str) -> Vec<Published> {
        self.topics.get(arn).cloned().unwrap_or_default()
    }

    /// Handles one request's form fields; the XML of the answer.
    pub(crate) fn call(&mut self, form: &[(String, String)]) -> Result<String, SnsError> {
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let action = field("Action").unwrap_or_default();
        if action != "Publish" {
            let message = format!("the emulator does not serve SNS {action}");
            return Err(error(400, "InvalidAction", message));
        }
        let arn = field("TopicArn").unwrap_or_default();
        let Some(message) = field("Message").filter(|m| !m.is_empty()) else {
            return Err(error(400, "InvalidParameter", "Empty message".into()));
        };
        let subject = field("Subject");
        if subject
            .as_ref()
            .is_some_and(|s| s.len() > 100 || !s.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        {
            return Err(error(
                400,
                "InvalidParameter",
                "Subject must be ASCII text under 100 characters".into(),
            ));
        }
        if self.failures > 0 {
            self.failures -= 1;
            return Err(error(500, "InternalError", "injected failure".into()));
        }
        let Some(messages) = self.topics.get_mut(&arn) else {
            return Err(error(404, "NotFound", "Topic does not exist".into()));
        };
        messages.push(Published { subject, message });
        let id = random_id("", 32).to_lowercase();
        Ok(format!(
            "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>{id}</MessageId></PublishResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></PublishResponse>",
            random_id("", 16).to_lowercase()
        ))
    }
}

fn error(status: u16, code: &'static str, message: String) -> SnsError {
    SnsError {
        status,
        code,
        message,
    }
}

/// SNS's XML error document.
pub(crate) fn error_xml(code: &str, message: &str) -> String {
    let kind = if code == "InternalError" {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(message),
        random_id("", 16).to_lowercase()
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `application/x-www-form-urlencoded` fields, decoded (`+` is a space, `%XX` a byte).
pub(crate) fn decode_form(body: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(byte) => {
                            out.push(byte);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    (body.split('&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn form_fields_are_decoded() {
        let form = super::decode_form("Action=Publish&Message=%7B%22a%22%3A+1%7D&Subject=a+b%2");
        assert_eq!(form[0], ("Action".into(), "Publish".into()));
        assert_eq!(form[1].1, "{\"a\": 1}");
        assert_eq!(form[2].1, "a b%2");
    }
}
