//! Template rendering: Jinja (minijinja) over per-channel bodies, with the locale
//! falling back to its language and then to the template's default bodies.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};
use tidings_platform::model::Channel;

use crate::model::{ChannelContent, EmailContent, InAppContent, PushContent, SmsContent, Template};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template {field}: {detail}")]
pub struct RenderError {
    pub field: String,
    pub detail: String,
}

/// One channel's finished content.
#[derive(Clone, Debug, PartialEq)]
pub enum Rendered {
    Push(PushContent),
    Sms(SmsContent),
    Email(EmailContent),
    InApp(InAppContent),
    Webhook(Map<String, Value>),
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        let mut env = Environment::new();
        // A missing variable renders empty rather than failing a send that is
        // already accepted; syntax errors are caught when the template is saved.
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        // Templates come from apps: keep rendering bounded.
        env.set_fuel(Some(100_000));
        Self { env }
    }
}

/// The bodies to use for `locale`: exact match, then its language, then the default.
pub fn pick_locale<'a>(template: &'a Template, locale: Option<&str>) -> Vec<&'a ChannelContent> {
    let mut chain = Vec::with_capacity(3);
    if let Some(locale) = locale {
        if let Some(c) = template.locales.get(locale) {
            chain.push(c);
        }
        if let Some((lang, _)) = locale.split_once('-') {
            if let Some(c) = template.locales.get(lang) {
                chain.push(c);
            }
        }
    }
    chain.push(&template.channels);
    chain
}

impl Renderer {
    fn render_str(&self, field: &str, source: &str, ctx: &Value) -> Result<String, RenderError> {
        // Only HTML is escaped: a push title or an SMS must not show `&amp;`.
        let result = if field.ends_with(".html") {
            self.env
                .template_from_named_str("body.html", source)
                .and_then(|t| t.render(ctx))
        } else {
            self.env.render_str(source, ctx)
        };
        result.map_err(|e| RenderError {
            field: field.to_owned(),
            detail: e.to_string(),
        })
    }

    fn opt(
        &self,
        field: &str,
        source: &Option<String>,
        ctx: &Value,
        literal: bool,
    ) -> Result<Option<String>, RenderError> {
        match source {
            Some(s) if !literal => self.render_str(field, s, ctx).map(Some),
            other => Ok(other.clone()),
        }
    }

    fn json(&self, field: &str, value: &Value, ctx: &Value) -> Result<Value, RenderError> {
        Ok(match value {
            Value::String(s) => Value::String(self.render_str(field, s, ctx)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.json(field, v, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(self.map(field, map, ctx)?),
            other => other.clone(),
        })
    }

    fn map(
        &self,
        field: &str,
        map: &Map<String, Value>,
        ctx: &Value,
    ) -> Result<Map<String, Value>, RenderError> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), self.json(field, v, ctx)?)))
            .collect()
    }

    /// Renders `channel` of `template` for `locale` with `ctx`; `literal` content is
    /// used as written. `None` when neither the locale nor the default defines it.
    pub fn render(
        &self,
        template: &Template,
        literal: bool,
        locale: Option<&str>,
        channel: Channel,
        ctx: &Value,
    ) -> Result<Option<Rendered>, RenderError> {
        let chain = pick_locale(template, locale);
        let maybe_map = |map: &Map<String, Value>, field: &str| {
            if literal {
                Ok(map.clone())
            } else {
                self.map(field, map, ctx)
            }
        };
        // Per field, the first locale in the chain that sets it wins: a translation
        // may override just a title and keep the default body.
        let first = |f: &dyn Fn(&ChannelContent) -> Option<String>| chain.iter().find_map(|c| f(c));
        let out = match channel {
            Channel::Push if chain.iter().any(|c| c.push.is_some()) => {
                let field = |g: fn(&PushContent) -> Option<String>| {
                    first(&|c: &ChannelContent| c.push.as_ref().and_then(g))
                };
                let data = chain
                    .iter()
                    .filter_map(|c| c.push.as_ref())
                    .map(|p| &p.data)
                    .find(|d| !d.is_empty())
                    .cloned()
                    .unwrap_or_default();
                Some(Ok::<_, RenderError>(Rendered::Push(PushContent {
                    title: self.opt("push.title", &field(|p| p.title.clone()), ctx, literal)?,
                    body: self.opt("push.body", &field(|p| p.body.clone()), ctx, literal)?,
                    data: maybe_map(&data, "push.data")?,
                    badge: chain
                        .iter()
                        .filter_map(|c| c.push.as_ref())
                        .find_map(|p| p.badge),
                })))
            }
            Channel::Sms => chain.iter().find_map(|c| c.sms.as_ref()).map(|s| {
                Ok(Rendered::Sms(SmsContent {
                    text: self
                        .opt("sms.text", &Some(s.text.clone()), ctx, literal)?
                        .unwrap_or_default(),
                }))
            }),
            Channel::Email if chain.iter().any(|c| c.email.is_some()) => {
                let field = |g: fn(&EmailContent) -> Option<String>| {
                    first(&|c: &ChannelContent| c.email.as_ref().and_then(g))
                };
                Some(Ok(Rendered::Email(EmailContent {
                    subject: self
                        .opt(
                            "email.subject",
                            &field(|e| Some(e.subject.clone())),
                            ctx,
                            literal,
                        )?
                        .unwrap_or_default(),
                    text: self.opt("email.text", &field(|e| e.text.clone()), ctx, literal)?,
                    html: self.opt("email.html", &field(|e| e.html.clone()), ctx, literal)?,
                })))
            }
            Channel::InApp if chain.iter().any(|c| c.in_app.is_some()) => {
                let field = |g: fn(&InAppContent) -> Option<String>| {
                    first(&|c: &ChannelContent| c.in_app.as_ref().and_then(g))
                };
                let data = chain
                    .iter()
                    .filter_map(|c| c.in_app.as_ref())
                    .map(|i| &i.data)
                    .find(|d| !d.is_empty())
                    .cloned()
                    .unwrap_or_default();
                Some(Ok(Rendered::InApp(InAppContent {
                    title: self.opt("in_app.title", &field(|i| i.title.clone()), ctx, literal)?,
                    body: self.opt("in_app.body", &field(|i| i.body.clone()), ctx, literal)?,
                    url: self.opt("in_app.url", &field(|i| i.url.clone()), ctx, literal)?,
                    data: maybe_map(&data, "in_app.data")?,
                })))
            }
            Channel::Webhook => chain
                .iter()
                .find_map(|c| c.webhook.as_ref())
                .map(|w| Ok(Rendered::Webhook(maybe_map(w, "webhook")?))),
            _ => None,
        };
        out.transpose()
    }

    /// Compiles every body of a template, so a syntax error is a 422 when the template
    /// is saved or a send names it, never a failed delivery later.
    pub fn check(&self, template: &Template) -> Result<(), RenderError> {
        let all = std::iter::once(("", &template.channels))
            .chain(template.locales.iter().map(|(k, v)| (k.as_str(), v)));
        for (locale, content) in all {
            let mut sources: Vec<(String, &str)> = Vec::new();
            let name = |f: &str| {
                if locale.is_empty() {
                    f.to_owned()
                } else {
                    format!("locales.{locale}.{f}")
                }
            };
            if let Some(p) = &content.push {
                sources.extend(p.title.as_deref().map(|s| (name("push.title"), s)));
                sources.extend(p.body.as_deref().map(|s| (name("push.body"), s)));
            }
            if let Some(s) = &content.sms {
                sources.push((name("sms.text"), s.text.as_str()));
            }
            if let Some(e) = &content.email {
                sources.push((name("email.subject"), e.subject.as_str()));
                sources.extend(e.text.as_deref().map(|s| (name("email.text"), s)));
                sources.extend(e.html.as_deref().map(|s| (name("email.html"), s)));
            }
            if let Some(i) = &content.in_app {
                sources.extend(i.title.as_deref().map(|s| (name("in_app.title"), s)));
                sources.extend(i.body.as_deref().map(|s| (name("in_app.body"), s)));
                sources.extend(i.url.as_deref().map(|s| (name("in_app.url"), s)));
            }
            for (field, source) in sources {
                self.env
                    .template_from_str(source)
                    .map_err(|e| RenderError {
                        field,
                        detail: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Template {
        serde_json::from_value(json!({
            "channels": {
                "push": {"title": "Order {{ order }} shipped", "body": "Hi {{ user.display_name }}"},
                "sms": {"text": "Order {{ order }} shipped"},
                "email": {"subject": "Shipped", "html": "<p>{{ note }}</p>"}
            },
            "locales": {
                "ko": {"push": {"title": "주문 {{ order }} 발송", "body": "안녕하세요"}},
                "pt-BR": {"sms": {"text": "Pedido {{ order }} enviado"}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn locale_falls_back_to_language_then_default() {
        let r = Renderer::default();
        let ctx =
            json!({"order": "8812", "note": "<b>fragile</b>", "user": {"display_name": "Alice"}});
        let t = template();
        let push = r
            .render(&t, false, Some("ko-KR"), Channel::Push, &ctx)
            .unwrap();
        assert_eq!(
            push,
            Some(Rendered::Push(PushContent {
                title: Some("주문 8812 발송".into()),
                body: Some("안녕하세요".into()),
                ..Default::default()
            }))
        );
        let sms = r.render(&t, false, Some("ko"), Channel::Sms, &ctx).unwrap();
        assert_eq!(
            sms,
            Some(Rendered::Sms(SmsContent {
                text: "Order 8812 shipped".into()
            })),
            "ko has no sms: default"
        );
        let sms = r
            .render(&t, false, Some("pt-BR"), Channel::Sms, &ctx)
            .unwrap();
        assert_eq!(
            sms,
            Some(Rendered::Sms(SmsContent {
                text: "Pedido 8812 enviado".into()
            }))
        );
        let push = r.render(&t, false, None, Channel::Push, &ctx).unwrap();
        assert_eq!(
            push,
            Some(Rendered::Push(PushContent {
                title: Some("Order 8812 shipped".into()),
                body: Some("Hi Alice".into()),
                ..Default::default()
            }))
        );
        assert_eq!(
            r.render(&t, false, None, Channel::InApp, &ctx).unwrap(),
            None
        );
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let r = Renderer::default();
        let ctx = json!({"note": "<b>&</b>", "order": "<1>"});
        let t = template();
        match r.render(&t, false, None, Channel::Email, &ctx).unwrap() {
            Some(Rendered::Email(e)) => assert_eq!(
                e.html.as_deref(),
                Some("<p>&lt;b&gt;&amp;&lt;&#x2f;b&gt;</p>")
            ),
            other => panic!("{other:?}"),
        }
        match r.render(&t, false, None, Channel::Sms, &ctx).unwrap() {
            Some(Rendered::Sms(s)) => assert_eq!(s.text, "Order <1> shipped"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn literal_content_is_not_interpreted() {
        let r = Renderer::default();
        let t = Template {
            channels: serde_json::from_value(json!({"sms": {"text": "{{ not a var }}"}})).unwrap(),
            ..Default::default()
        };
        let out = r.render(&t, true, None, Channel::Sms, &json!({})).unwrap();
        assert_eq!(
            out,
            Some(Rendered::Sms(SmsContent {
                text: "{{ not a var }}".into()
            }))
        );
    }

    #[test]
    fn syntax_errors_are_found_up_front() {
        let r = Renderer::default();
        let bad: Template =
            serde_json::from_value(json!({"channels": {"sms": {"text": "{% if %}"}}})).unwrap();
        let err = r.check(&bad).unwrap_err();
        assert_eq!(err.field, "sms.text");
        assert!(r.check(&template()).is_ok());
    }
}
