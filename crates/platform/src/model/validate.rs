//! Parse-don't-validate helpers for user-supplied fields. Each returns the value in
//! its one canonical spelling, or an error that names the field.

use crate::error::{Error, Result};

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const PASSWORD_MIN: usize = 8;
/// argon2 is fed the whole password; a cap keeps a huge one from costing us.
pub const PASSWORD_MAX: usize = 256;
pub const DISPLAY_NAME_MAX: usize = 64;
pub const EMAIL_MAX: usize = 254;
pub const URL_MAX: usize = 2048;
pub const EXTERNAL_ID_MAX: usize = 128;
pub const DEVICE_TOKEN_MAX: usize = 4096;
pub const TOPIC_MAX: usize = 255;

/// 3–32 characters of `a-z 0-9 _ .`. Upper case is folded so `Alice` and `alice`
/// cannot both exist.
pub fn username(raw: &str) -> Result<String> {
    let name = raw.trim().to_ascii_lowercase();
    let len = name.chars().count();
    let charset_ok = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) || !charset_ok {
        return Err(Error::validation(
            "username",
            format!("username must be {USERNAME_MIN}-{USERNAME_MAX} characters of a-z, 0-9, '_' and '.'"),
        ));
    }
    Ok(name)
}

pub fn password(raw: &str) -> Result<()> {
    let len = raw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        return Err(Error::validation(
            "password",
            format!("password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"),
        ));
    }
    Ok(())
}

pub fn display_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().count() > DISPLAY_NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(Error::validation(
            "display_name",
            format!("display_name must be 1-{DISPLAY_NAME_MAX} printable characters"),
        ));
    }
    Ok(name.to_string())
}

/// A pragmatic address check: one `@`, a non-empty local part, a domain with a dot
/// and sane labels. The domain is lower-cased; the local part is kept as given
/// because some servers treat it case-sensitively.
pub fn email(raw: &str) -> Result<String> {
    let bad = || Error::validation("email", "email must look like name@example.com");
    let s = raw.trim();
    if s.len() > EMAIL_MAX {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && local
            .chars()
            .all(|c| c.is_ascii_graphic() || !c.is_ascii() && !c.is_control());
    let domain = domain.to_ascii_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        });
    if !local_ok || !domain_ok {
        return Err(bad());
    }
    Ok(format!("{local}@{domain}"))
}

/// E.164: `+`, a country code that does not start with 0, at most 15 digits in all.
/// Spaces, dashes, dots and parentheses that people type are dropped first.
pub fn phone(raw: &str) -> Result<String> {
    let bad = || {
        Error::validation(
            "phone",
            "phone must be in E.164 form: '+', country code and number, at most 15 digits",
        )
    };
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').ok_or_else(bad)?;
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !ok {
        return Err(bad());
    }
    Ok(compact)
}

/// A BCP 47 language tag such as `en`, `ko`, `pt-BR` or `zh-Hant-TW`, normalised to
/// the usual casing (language lower, region upper, script title).
pub fn locale(raw: &str) -> Result<String> {
    let bad = || {
        Error::validation(
            "locale",
            "locale must be a language tag such as 'en' or 'pt-BR'",
        )
    };
    let s = raw.trim().replace('_', "-");
    let mut parts = s.split('-');
    let lang = parts.next().ok_or_else(bad)?;
    if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let mut out = lang.to_ascii_lowercase();
    let mut count = 0;
    for part in parts {
        count += 1;
        if count > 4
            || !(2..=8).contains(&part.len())
            || !part.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(bad());
        }
        out.push('-');
        if part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push_str(&part.to_ascii_uppercase());
        } else if part.len() == 4 && part.bytes().all(|b| b.is_ascii_alphabetic()) {
            let lower = part.to_ascii_lowercase();
            out.push_str(&lower[..1].to_ascii_uppercase());
            out.push_str(&lower[1..]);
        } else {
            out.push_str(&part.to_ascii_lowercase());
        }
    }
    Ok(out)
}

/// An IANA timezone name known to the bundled tz database, in its canonical case.
pub fn timezone(raw: &str) -> Result<String> {
    let tz: chrono_tz::Tz = raw
        .trim()
        .parse()
        .or_else(|_| chrono_tz::Tz::from_str_insensitive(raw.trim()))
        .map_err(|_| {
            Error::validation(
                "timezone",
                "timezone must be an IANA name such as 'Asia/Seoul'",
            )
        })?;
    Ok(tz.name().to_string())
}

pub fn http_url(field: &'static str, raw: &str) -> Result<String> {
    let s = raw.trim();
    let lower = s.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let ok = s.len() <= URL_MAX
        && rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Error::validation(
            field,
            format!("{field} must be an http(s) URL of at most {URL_MAX} characters"),
        ));
    }
    Ok(s.to_string())
}

pub fn external_id(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > EXTERNAL_ID_MAX || s.chars().any(char::is_control) {
        return Err(Error::validation(
            "external_id",
            format!("external_id must be 1-{EXTERNAL_ID_MAX} bytes of printable text"),
        ));
    }
    Ok(s.to_string())
}

/// A push token as a provider issued it: printable, no spaces, bounded.
pub fn device_token(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > DEVICE_TOKEN_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::validation(
            "token",
            format!("token must be 1-{DEVICE_TOKEN_MAX} printable ASCII characters without spaces"),
        ));
    }
    Ok(s.to_string())
}

pub fn device_topic(raw: &str) -> Result<String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > TOPIC_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::validation(
            "topic",
            format!("topic must be 1-{TOPIC_MAX} printable ASCII characters, such as a bundle id"),
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(username("Alice_1.x").unwrap(), "alice_1.x");
        for bad in [
            "ab",
            "a b c",
            "toolongtoolongtoolongtoolongtoolong",
            "héllo",
            "bob!",
        ] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(phone("+82 10-1234-5678").unwrap(), "+821012345678");
        assert_eq!(phone("+1 (415) 555-0100").unwrap(), "+14155550100");
        for bad in [
            "01012345678",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+1415abc0100",
            "",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Bob@Example.COM ").unwrap(), "Bob@example.com");
        for bad in [
            "bob",
            "bob@",
            "@example.com",
            "bob@localhost",
            "bob@-x.com",
            "a b@x.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locales_and_timezones() {
        assert_eq!(locale("pt_br").unwrap(), "pt-BR");
        assert_eq!(locale("zh-hant-tw").unwrap(), "zh-Hant-TW");
        assert!(locale("english!").is_err());
        assert_eq!(timezone("asia/seoul").unwrap(), "Asia/Seoul");
        assert!(timezone("Nowhere/Land").is_err());
    }

    #[test]
    fn urls() {
        assert!(http_url("avatar_url", "https://cdn.example.com/a.png").is_ok());
        assert!(http_url("avatar_url", "javascript:alert(1)").is_err());
        assert!(http_url("avatar_url", "https://").is_err());
    }
}
