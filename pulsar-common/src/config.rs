//! The connection properties both Pulsar connectors take, defined once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use connector_core::config::{PropertyKind, PropertyReader, PropertySpec};
use url::Url;

use crate::auth::Auth;

/// `topic`: the topic to read or write.
pub const TOPIC: PropertySpec = PropertySpec::required(
    "topic",
    PropertyKind::String,
    "Topic: `my-topic` (in `public/default`), `tenant/namespace/topic`, or a full `persistent://tenant/namespace/topic`.",
);

/// `broker_url`: `pulsar://host:6650` or `pulsar+ssl://host:6651`.
pub const BROKER_URL: PropertySpec = PropertySpec::required(
    "broker_url",
    PropertyKind::Url,
    "Service URL of the cluster: `pulsar://host:6650`, or `pulsar+ssl://host:6651` for TLS.",
);

/// `auth_type`: empty (no auth), `token` or `oauth2`.
pub const AUTH_TYPE: PropertySpec = PropertySpec::required(
    "auth_type",
    PropertyKind::Choice(&["", "token", "oauth2"]),
    "Authentication: empty for none, `token` (JWT) or `oauth2` (client credentials).",
);

/// `auth_params`: the parameters of `auth_type`.
pub const AUTH_PARAMS: PropertySpec = PropertySpec::optional(
    "auth_params",
    PropertyKind::Map,
    Some("{}"),
    "Authentication parameters: for `token` `{\"token\": \"...\"}` (or `file:///path`); for `oauth2` `issuer_url`, `client_id` and `client_secret` or `private_key` (credentials file), `audience`, `scope` (camelCase spellings `issuerUrl`, `clientId`, `privateKey` also accepted).",
);

/// `tls_trust_certs_file_path`: extra CA certificates for `pulsar+ssl://`.
pub const TLS_TRUST_CERTS_FILE_PATH: PropertySpec = PropertySpec::optional(
    "tls_trust_certs_file_path",
    PropertyKind::String,
    None,
    "PEM file of CA certificates trusted for `pulsar+ssl://` besides the public roots (for brokers with a private CA).",
);

/// Every connection property, in documentation order, for a connector's
/// `ConnectorSpec` (after which it lists its own).
pub const CONNECTION_PROPERTIES: [PropertySpec; 5] = [
    TOPIC,
    BROKER_URL,
    AUTH_TYPE,
    AUTH_PARAMS,
    TLS_TRUST_CERTS_FILE_PATH,
];

/// Where the cluster is, how to authenticate, and which topic.
///
/// ```
/// use pulsar_common::{Auth, ConnectionConfig};
///
/// let config = ConnectionConfig::new("pulsar://localhost:6650".parse().unwrap(), "orders")
///     .auth(Auth::token("eyJhbGciOi..."));
/// assert_eq!(config.topic, "persistent://public/default/orders");
/// assert!(!format!("{config:?}").contains("eyJ")); // secrets are never printed
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionConfig {
    /// `pulsar://host:port` or `pulsar+ssl://host:port`.
    pub broker_url: Url,
    /// The full topic name (`persistent://tenant/namespace/topic`).
    pub topic: String,
    /// How to authenticate.
    pub auth: Auth,
    /// A PEM file of extra trusted CA certificates for TLS.
    pub tls_trust_certs_file: Option<PathBuf>,
}

impl ConnectionConfig {
    /// No auth, public roots only; `topic` in any of its short forms.
    pub fn new(broker_url: Url, topic: &str) -> Self {
        ConnectionConfig {
            broker_url,
            topic: full_topic_name(topic),
            auth: Auth::None,
            tls_trust_certs_file: None,
        }
    }

    /// Sets the authentication.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.broker_url.scheme() == "pulsar+ssl"
    }

    /// `host:port` of the service URL (default ports 6650 and 6651).
    pub fn address(&self) -> String {
        let host = self.broker_url.host_str().unwrap_or("localhost");
        let port = self
            .broker_url
            .port()
            .unwrap_or(if self.is_tls() { 6651 } else { 6650 });
        format!("{host}:{port}")
    }

    /// Reads [`CONNECTION_PROPERTIES`]; problems are left in `reader`.
    pub fn read(reader: &mut PropertyReader<'_>) -> ConnectionConfig {
        let topic: String = reader.required("topic");
        if reader.is_set("topic") && !topic.is_empty() {
            if let Err(reason) = check_topic(&topic) {
                reader.invalid("topic", reason);
            }
        } else if reader.is_set("topic") {
            reader.invalid("topic", "must not be empty");
        }
        let url_text: String = reader.required("broker_url");
        let broker_url = match Url::parse(&url_text) {
            Ok(url) if matches!(url.scheme(), "pulsar" | "pulsar+ssl") && url.host().is_some() => {
                Some(url)
            }
            Ok(_) => {
                reader.invalid(
                    "broker_url",
                    format!(
                        "expected `pulsar://host:6650` or `pulsar+ssl://host:6651`, got `{url_text}`"
                    ),
                );
                None
            }
            Err(e) if reader.is_set("broker_url") => {
                reader.invalid("broker_url", format!("`{url_text}` is not a URL: {e}"));
                None
            }
            Err(_) => None,
        };
        let auth_type: String = reader.required("auth_type");
        let params: BTreeMap<String, String> = reader.required("auth_params");
        let auth = Auth::from_params(&auth_type, &params).unwrap_or_else(|reason| {
            reader.invalid("auth_params", reason);
            Auth::None
        });
        let tls_trust_certs_file: Option<String> = reader.optional("tls_trust_certs_file_path");
        if let Some(path) = &tls_trust_certs_file
            && !std::path::Path::new(path).is_file()
        {
            reader.invalid(
                "tls_trust_certs_file_path",
                format!("`{path}` is not a readable file"),
            );
        }
        ConnectionConfig {
            broker_url: broker_url
                .unwrap_or_else(|| Url::parse("pulsar://localhost:6650").expect("valid URL")),
            topic: full_topic_name(&topic),
            auth,
            tls_trust_certs_file: tls_trust_certs_file.map(PathBuf::from),
        }
    }
}

/// Pulsar's topic name rules: `t` is `persistent://public/default/t`,
/// `tenant/ns/t` is `persistent://tenant/ns/t`, a full name stays as it is.
///
/// ```
/// use pulsar_common::full_topic_name;
///
/// assert_eq!(full_topic_name("orders"), "persistent://public/default/orders");
/// assert_eq!(full_topic_name("shop/eu/orders"), "persistent://shop/eu/orders");
/// assert_eq!(full_topic_name("non-persistent://shop/eu/orders"), "non-persistent://shop/eu/orders");
/// ```
pub fn full_topic_name(topic: &str) -> String {
    if topic.contains("://") {
        topic.to_owned()
    } else if topic.contains('/') {
        format!("persistent://{topic}")
    } else {
        format!("persistent://public/default/{topic}")
    }
}

fn check_topic(topic: &str) -> Result<(), String> {
    let (domain, rest) = match topic.split_once("://") {
        Some((domain, rest)) => (Some(domain), rest),
        None => (None, topic),
    };
    if let Some(domain) = domain
        && !matches!(domain, "persistent" | "non-persistent")
    {
        return Err(format!(
            "`{topic}`: the domain must be `persistent` or `non-persistent`, got `{domain}`"
        ));
    }
    let parts = rest.split('/').count();
    let valid = match domain {
        Some(_) => parts == 3,
        None => parts == 1 || parts == 3,
    };
    if !valid || rest.split('/').any(str::is_empty) {
        return Err(format!(
            "`{topic}` is not a topic name (expected `topic`, `tenant/namespace/topic` or `persistent://tenant/namespace/topic`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_forms() {
        assert!(check_topic("orders").is_ok());
        assert!(check_topic("a/b/c").is_ok());
        assert!(check_topic("persistent://a/b/c").is_ok());
        assert!(
            check_topic("a/b")
                .unwrap_err()
                .contains("is not a topic name")
        );
        assert!(
            check_topic("kafka://a/b/c")
                .unwrap_err()
                .contains("domain must be")
        );
        assert!(check_topic("persistent://a//c").is_err());
    }
}
