//! `${VAR}` substitution in pipeline files, so secrets stay out of them.
//!
//! `${NAME}` is the variable's value (an error names the variable when it is
//! not set), `${NAME:-default}` falls back when it is unset or empty,
//! `${NAME-default}` only when it is unset, `${NAME:?message}` fails with the
//! message when it is unset or empty, and `$$` is a literal `$`. A `$` not
//! followed by `{` or `$` is kept as it is.

/// Replaces every reference in `text`, looking variables up with `lookup`.
/// The error says which variable is missing (never any value).
pub fn substitute(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{}`", redact(text)))?;
            out.push_str(&expand(&body[..end], lookup)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands one `${...}` body.
fn expand(body: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, modifier) = body.split_at(name_end);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "`${{{body}}}` is not a variable reference (expected `${{NAME}}`, `${{NAME:-default}}` or `${{NAME:?message}}`)"
        ));
    }
    let value = lookup(name);
    let set_and_not_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    if modifier.is_empty() {
        return value.ok_or_else(|| {
            format!("environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)")
        });
    }
    if let Some(default) = modifier.strip_prefix(":-") {
        return Ok(if set_and_not_empty {
            value.unwrap_or_default()
        } else {
            default.to_owned()
        });
    }
    if let Some(default) = modifier.strip_prefix('-') {
        return Ok(value.unwrap_or_else(|| default.to_owned()));
    }
    if let Some(message) = modifier.strip_prefix(":?") {
        return if set_and_not_empty {
            Ok(value.unwrap_or_default())
        } else if message.is_empty() {
            Err(format!("environment variable `{name}` is not set or empty"))
        } else {
            Err(format!("environment variable `{name}`: {message}"))
        };
    }
    Err(format!(
        "`${{{body}}}`: unknown modifier `{modifier}` (expected `:-`, `-` or `:?`)"
    ))
}

/// Text for an error about a malformed reference: the part before the `$`
/// could be a secret, so only the reference is shown.
fn redact(text: &str) -> &str {
    text.rfind("${").map_or(text, |i| &text[i..])
}

/// The process environment as a lookup.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("kafka1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<String, String> {
        substitute(text, &env)
    }

    #[test]
    fn references() {
        assert_eq!(sub("${HOST}:9092").unwrap(), "kafka1:9092");
        assert_eq!(sub("plain").unwrap(), "plain");
        assert_eq!(sub("a$b $ $$ $${HOST}").unwrap(), "a$b $ $ ${HOST}");
        assert_eq!(sub("${MISSING:-x}").unwrap(), "x");
        assert_eq!(sub("${EMPTY:-x}").unwrap(), "x");
        assert_eq!(sub("${EMPTY-x}").unwrap(), "");
        assert_eq!(sub("${MISSING-x}").unwrap(), "x");
        assert_eq!(sub("${HOST:?need it}").unwrap(), "kafka1");
    }

    #[test]
    fn errors_name_the_variable() {
        assert_eq!(
            sub("${MISSING}").unwrap_err(),
            "environment variable `MISSING` is not set (write `${MISSING:-default}` to give a default)"
        );
        assert_eq!(
            sub("${EMPTY:?set the password}").unwrap_err(),
            "environment variable `EMPTY`: set the password"
        );
        assert!(sub("secret${HOST").unwrap_err().contains("`${HOST`"));
        assert!(!sub("secret${HOST").unwrap_err().contains("secret"));
        assert!(sub("${1A}").is_err());
        assert!(sub("${A:x}").unwrap_err().contains("unknown modifier"));
    }
}
