//! The shared server over real sockets: status codes, methods, several
//! endpoints and shared endpoints on one server, endpoints coming and
//! going while it runs, bearer tokens, TLS with a self-signed certificate,
//! the port released when the last source goes, and configuration errors.

mod common;

use std::time::Duration;

use common::{WAIT, client, config, port_is_free, post, run, send, string, tls_client};
use connector_core::{Properties, Source, Value};
use reqwest::Method;
use source_httppush::{HttpPushConfig, HttpPushSource, PushMethod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn unknown_paths_get_404_and_wrong_methods_405_with_allow() {
    let running = run(config("/api/data")).await;
    let http = client();
    let base = running.url.trim_end_matches("/api/data").to_owned();

    let (status, _, body) = send(&http, Method::POST, &format!("{base}/api/other"), "{}").await;
    assert_eq!(
        (status, body.as_str()),
        (404, "no endpoint at `/api/other`")
    );
    let (status, _, _) = send(&http, Method::POST, &format!("{base}/api/data/"), "{}").await;
    assert_eq!(status, 404, "paths match exactly");

    for method in [Method::GET, Method::PUT, Method::DELETE, Method::PATCH] {
        let response = http
            .request(method.clone(), &running.url)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
        let body = response.text().await.unwrap();
        assert_eq!(
            body,
            format!("`{method}` is not allowed at `/api/data`; use POST")
        );
    }
    // A query string does not change the path.
    let (status, _, _) = send(
        &http,
        Method::POST,
        &format!("{}?source=x", running.url),
        "{}",
    )
    .await;
    assert_eq!(status, 200);
    running.wait_for(1).await;
    running.stop().await;
}

#[tokio::test]
async fn put_endpoints_accept_put_only_and_post_and_put_can_share_a_path() {
    let addr = common::local();
    let put = run(HttpPushConfig::new("/items")
        .with_address(addr)
        .with_method(PushMethod::Put))
    .await;
    let http = client();
    let (status, _, body) = send(&http, Method::PUT, &put.url, r#"{"via": "put"}"#).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, body) = send(&http, Method::POST, &put.url, r#"{"via": "post"}"#).await;
    assert_eq!(
        (status, body.as_str()),
        (405, "`POST` is not allowed at `/items`; use PUT")
    );

    // Another source serves POST on the same path of the same server.
    let post_source = run(HttpPushConfig::new("/items").with_address(addr)).await;
    assert_eq!(post_source.url, put.url);
    let (status, _, _) = send(&http, Method::POST, &put.url, r#"{"via": "post"}"#).await;
    assert_eq!(status, 200);
    let response = http.get(&put.url).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST, PUT");

    assert_eq!(string(&put.wait_for(1).await[0], "via"), "put");
    assert_eq!(string(&post_source.wait_for(1).await[0], "via"), "post");
    put.stop().await;
    post_source.stop().await;
}

#[tokio::test]
async fn two_endpoints_on_one_server_each_get_their_own_records() {
    let addr = common::local();
    let a = run(HttpPushConfig::new("/a").with_address(addr)).await;
    let b = run(HttpPushConfig::new("/b").with_address(addr)).await;
    assert_eq!(a.addr, b.addr);
    let http = client();
    for i in 0..5 {
        assert_eq!(post(&http, &a.url, format!(r#"{{"n": {i}}}"#)).await.0, 200);
        assert_eq!(
            post(&http, &b.url, format!(r#"{{"n": {}}}"#, i + 100))
                .await
                .0,
            200
        );
    }
    let got_a: Vec<Value> = a
        .wait_for(5)
        .await
        .iter()
        .map(|r| r.values[0].clone())
        .collect();
    let got_b: Vec<Value> = b
        .wait_for(5)
        .await
        .iter()
        .map(|r| r.values[0].clone())
        .collect();
    assert_eq!(got_a, (0..5).map(Value::Int64).collect::<Vec<_>>());
    assert_eq!(got_b, (100..105).map(Value::Int64).collect::<Vec<_>>());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn endpoints_come_and_go_while_the_server_runs() {
    let addr = common::local();
    let stay = run(HttpPushConfig::new("/stay").with_address(addr)).await;
    let http = client();
    let visitor = run(HttpPushConfig::new("/visit").with_address(addr)).await;
    assert_eq!(post(&http, &visitor.url, "{}").await.0, 200);
    visitor.wait_for(1).await;
    visitor.stop().await;
    assert_eq!(
        post(&http, &stay.url.replace("/stay", "/visit"), "{}")
            .await
            .0,
        404
    );
    assert_eq!(
        post(&http, &stay.url, "{}").await.0,
        200,
        "the other endpoint still works"
    );
    assert!(!port_is_free(addr), "the server keeps running for `/stay`");
    // The path can be taken again, here by an unshared source.
    let again = run(HttpPushConfig::new("/visit").with_address(addr)).await;
    assert_eq!(post(&http, &again.url, "{}").await.0, 200);
    again.wait_for(1).await;
    stay.wait_for(1).await;
    again.stop().await;
    stay.stop().await;
}

#[tokio::test]
async fn shared_endpoints_give_every_source_every_record() {
    let addr = common::local();
    let shared = || {
        HttpPushConfig::new("/fan")
            .with_address(addr)
            .with_shared(true)
    };
    let first = run(shared()).await;
    let second = run(
        shared().with_format(connector_core::format::FormatConfig::new(
            connector_core::format::DataFormat::TEXT,
        )),
    )
    .await;
    let http = client();
    for i in 0..10 {
        assert_eq!(
            post(&http, &first.url, format!(r#"{{"n": {i}}}"#)).await.0,
            200
        );
    }
    let json: Vec<Value> = first
        .wait_for(10)
        .await
        .iter()
        .map(|r| r.values[0].clone())
        .collect();
    assert_eq!(json, (0..10).map(Value::Int64).collect::<Vec<_>>());
    // Each source decodes with its own format.
    let text: Vec<Value> = second
        .wait_for(10)
        .await
        .iter()
        .map(|r| r.values[0].clone())
        .collect();
    assert_eq!(text[3], Value::from(r#"{"n": 3}"#));

    // A body one of them cannot decode is refused for all.
    let (status, body) = post(&http, &first.url, "not json").await;
    assert_eq!(status, 400, "{body}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(second.collected.len(), 10, "the text source got no copy");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn an_endpoint_is_shared_only_when_every_source_agrees() {
    let addr = common::local();
    let mut owner = HttpPushSource::new(HttpPushConfig::new("/own").with_address(addr)).unwrap();
    owner.start().await.unwrap();
    let mut intruder = HttpPushSource::new(
        HttpPushConfig::new("/own")
            .with_address(addr)
            .with_shared(true),
    )
    .unwrap();
    let err = intruder.start().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "httppush source: property `endpoint`: `POST /own` on {addr} is already served by another httppush source; \
             set `shared` to `true` on every source of the endpoint to give each of them every record"
        )
    );

    let shared = || {
        HttpPushConfig::new("/s")
            .with_address(addr)
            .with_shared(true)
    };
    let mut a = HttpPushSource::new(shared().with_bearer_token("t1")).unwrap();
    a.start().await.unwrap();
    let mut b = HttpPushSource::new(shared().with_bearer_token("t2")).unwrap();
    let err = b.start().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "httppush source: property `bearer_token`: differs from the other sources sharing `POST /s` on {addr}; \
             sources sharing an endpoint must agree on it"
        )
    );
    assert!(!err.contains("t1") && !err.contains("t2"));
    let mut c =
        HttpPushSource::new(shared().with_bearer_token("t1").with_max_body_bytes(10)).unwrap();
    let err = c.start().await.unwrap_err().to_string();
    assert!(err.contains("property `max_body_bytes`: differs"), "{err}");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_with_or_without_a_length() {
    let running = run(config("/small").with_max_body_bytes(64)).await;
    let http = client();
    let (status, body) = post(
        &http,
        &running.url,
        format!(r#"{{"s": "{}"}}"#, "x".repeat(100)),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (413, "the request body is larger than the limit of 64 bytes")
    );
    assert_eq!(post(&http, &running.url, r#"{"s": "fits"}"#).await.0, 200);

    // A chunked body announces no length: the limit applies while reading.
    let mut tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let chunk = "y".repeat(50);
    let request = format!(
        "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         32\r\n{chunk}\r\n32\r\n{chunk}\r\n0\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.ends_with("the request body is larger than the limit of 64 bytes"),
        "{answer}"
    );

    running.wait_for(1).await;
    assert_eq!(running.counters.snapshot().too_large, 2);
    running.stop().await;
}

#[tokio::test]
async fn compressed_bodies_get_415() {
    let running = run(config("/z")).await;
    let response = client()
        .post(&running.url)
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 0x08])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(
        response.text().await.unwrap(),
        "Content-Encoding `gzip` is not supported; send the body uncompressed"
    );
    running.stop().await;
}

#[tokio::test]
async fn bearer_tokens_are_required_when_set_and_never_shown() {
    let config = config("/secure").with_bearer_token("s3cr3t-token");
    assert!(!format!("{config:?}").contains("s3cr3t-token"));
    let running = run(config).await;
    let http = client();

    let response = http.post(&running.url).body("{}").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"httppush\""
    );
    assert_eq!(
        response.text().await.unwrap(),
        "missing or wrong bearer token (send `Authorization: Bearer <token>`)"
    );
    for header in [
        "Bearer wrong",
        "Basic czNjcjN0LXRva2Vu",
        "Bearer s3cr3t-token-and-more",
        "s3cr3t-token",
    ] {
        let response = http
            .post(&running.url)
            .header("authorization", header)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{header}");
    }
    let response = http
        .post(&running.url)
        .bearer_auth("s3cr3t-token")
        .body(r#"{"ok": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    running.wait_for(1).await;
    assert_eq!(running.counters.snapshot().unauthorized, 5);
    running.stop().await;
}

/// A self-signed certificate for localhost/127.0.0.1 written to a temp dir:
/// (dir, certfile, keyfile, certificate PEM).
pub fn self_signed() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let pem = generated.cert.pem();
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (dir, cert, key, pem)
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate() {
    let (_dir, cert, key, pem) = self_signed();
    let addr = common::local();
    let mut props = Properties::from_pairs([
        ("endpoint", "/tls"),
        ("http_server_ip", "127.0.0.1"),
        ("certfile", cert.to_str().unwrap()),
        ("keyfile", key.to_str().unwrap()),
    ]);
    props.set("http_server_port", addr.port().to_string());
    let running = run(HttpPushConfig::from_properties(&props).unwrap()).await;
    assert_eq!(running.url, format!("https://{addr}/tls"));

    let https = tls_client(&pem);
    assert_eq!(
        post(&https, &running.url, r#"{"secure": true}"#).await,
        (200, "ok".into())
    );
    let records = running.wait_for(1).await;
    assert_eq!(records[0].get("secure"), Some(&Value::Boolean(true)));

    // HTTP/2 is offered by ALPN.
    let response = https.post(&running.url).body("{}").send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);

    // Plain HTTP to the TLS port gets no answer, and a client that does not
    // trust the certificate refuses it.
    let plain = client()
        .post(running.url.replace("https://", "http://"))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    let untrusting = tls_client(&self_signed().3);
    let err = untrusting
        .post(&running.url)
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("InvalidCertificate"), "{err:?}");

    // A source without TLS cannot join the HTTPS server.
    let mut plain_source =
        HttpPushSource::new(HttpPushConfig::new("/plain").with_address(addr)).unwrap();
    let err = plain_source.start().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "httppush source: property `certfile`: the server on {addr} serves HTTPS (`certfile`, `keyfile`) for other sources; set the same files here"
        )
    );
    running.stop().await;
}

#[tokio::test]
async fn tls_files_that_do_not_load_are_configuration_errors() {
    let (dir, cert, key, _) = self_signed();
    let missing = dir.path().join("missing.crt");
    let mut source = HttpPushSource::new(config("/t").with_tls(&missing, &key)).unwrap();
    let err = source.start().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "httppush source: property `certfile`: cannot read the certificate file `{}`: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let mut source = HttpPushSource::new(config("/t").with_tls(&cert, &cert)).unwrap();
    let err = source.start().await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "httppush source: property `keyfile`: `{}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            cert.display()
        )
    );
    let (_other_dir, _, other_key, _) = self_signed();
    let mut source = HttpPushSource::new(config("/t").with_tls(&cert, &other_key)).unwrap();
    let err = source.start().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "httppush source: property `keyfile`: the key `{}` cannot serve the certificate `{}`:",
            other_key.display(),
            cert.display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn the_server_stops_and_releases_its_port_when_the_last_source_goes() {
    let addr = common::local();
    let mut a = HttpPushSource::new(HttpPushConfig::new("/a").with_address(addr)).unwrap();
    let mut b = HttpPushSource::new(HttpPushConfig::new("/b").with_address(addr)).unwrap();
    assert!(port_is_free(addr), "nothing listens before a source starts");
    a.start().await.unwrap();
    b.start().await.unwrap();
    assert!(!port_is_free(addr));

    a.close().await.unwrap();
    assert!(!port_is_free(addr), "`/b` still needs the server");
    let http = client();
    assert_eq!(post(&http, &format!("http://{addr}/b"), "{}").await.0, 200);
    assert_eq!(post(&http, &format!("http://{addr}/a"), "{}").await.0, 404);

    b.close().await.unwrap();
    assert!(
        port_is_free(addr),
        "closing the last source released the port"
    );
    assert!(
        http.post(format!("http://{addr}/b"))
            .body("{}")
            .send()
            .await
            .is_err()
    );

    // Dropping (instead of closing) the last source releases it too.
    let mut c = HttpPushSource::new(HttpPushConfig::new("/c").with_address(addr)).unwrap();
    c.start().await.unwrap();
    assert!(!port_is_free(addr));
    drop(c);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !port_is_free(addr) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "port still bound after the drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And a new source starts a new server on the same port at once.
    let mut d = HttpPushSource::new(HttpPushConfig::new("/d").with_address(addr)).unwrap();
    d.start().await.unwrap();
    assert_eq!(post(&http, &format!("http://{addr}/d"), "{}").await.0, 200);
    let batch = d.next_batch().await.unwrap().unwrap();
    assert_eq!(batch.len(), 1);
    batch.delivered();
}

#[tokio::test]
async fn a_port_taken_by_someone_else_is_reported_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut source = HttpPushSource::new(HttpPushConfig::new("/x").with_address(addr)).unwrap();
    let err = source.start().await.unwrap_err();
    assert!(!err.is_retryable());
    let err = err.to_string();
    assert!(
        err.starts_with(&format!(
            "httppush source: listen on {addr}: the address is already in use by another process"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn port_zero_lets_the_system_choose_and_sources_share_it() {
    // Every source configured with 127.0.0.1:0 shares one server on the
    // port the system chose.
    let zero: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut a = HttpPushSource::new(HttpPushConfig::new("/zero-a").with_address(zero)).unwrap();
    let mut b = HttpPushSource::new(HttpPushConfig::new("/zero-b").with_address(zero)).unwrap();
    let addr_a = a.start().await.unwrap();
    let addr_b = b.start().await.unwrap();
    assert_ne!(addr_a.port(), 0);
    assert_eq!(addr_a, addr_b);
    assert_eq!(a.url().unwrap(), format!("http://{addr_a}/zero-a"));
}

#[test]
fn configuration_errors_name_the_property() {
    let err = HttpPushSource::from_properties(&Properties::from_pairs([
        ("endpoint", "api/data"),
        ("method", "GET"),
        ("http_server_ip", "localhost:80"),
        ("http_server_port", "70000"),
        ("certfile", "/x.crt"),
        ("retain_size", "-1"),
        ("max_pending_records", "0"),
        ("wait_for_delivery", "yes"),
        ("shraed", "true"),
    ]))
    .unwrap_err()
    .to_string();
    for expected in [
        "httppush source: invalid configuration:",
        "property `endpoint`: must be a URL path starting with `/` (e.g. `/api/data`), got `api/data`",
        "property `method`: expected `POST` or `PUT`, got `GET`",
        "property `http_server_ip`: expected an IP address such as `0.0.0.0` or `127.0.0.1`, got `localhost:80`",
        "property `http_server_port`: expected a whole number",
        "property `keyfile`: required when `certfile` is set",
        "property `retain_size`: expected a whole number",
        "property `max_pending_records`: must be at least 1",
        "property `wait_for_delivery`: expected `true` or `false`, got `yes`",
        "property `shraed`: unknown property; did you mean `shared`?",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }

    let err = HttpPushSource::from_properties(&Properties::new())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "httppush source: property `endpoint`: required property is missing"
    );
    let err = HttpPushSource::from_properties(&Properties::from_pairs([
        ("endpoint", "/a b"),
        ("bearer_token", ""),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("property `endpoint`: must be a plain URL path, got `/a b` (it contains ' ')"),
        "{err}"
    );
    assert!(
        err.contains("property `bearer_token`: must not be empty"),
        "{err}"
    );
}

#[test]
fn defaults_follow_the_spec() {
    let config = HttpPushConfig::from_properties(&Properties::from_pairs([
        ("endpoint", "/api/data"),
        ("method", "put"),
        ("http_server_tls.certfile", "/c.pem"),
        ("http_server_tls.keyfile", "/k.pem"),
    ]))
    .unwrap();
    assert_eq!(config.server.addr, "0.0.0.0:10081".parse().unwrap());
    assert_eq!(config.method, PushMethod::Put);
    assert_eq!(
        config
            .server
            .tls
            .as_ref()
            .map(|t| t.certfile.to_str().unwrap()),
        Some("/c.pem")
    );
    assert!(!config.shared && !config.wait_for_delivery);
    assert_eq!(config.retain_size, 0);
    assert_eq!(config.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(config.retry_after, Duration::from_secs(1));
    let source = HttpPushSource::new(config).unwrap();
    assert_eq!(source.name(), "httppush source");
    assert!(
        source.local_addr().is_none(),
        "nothing listens before start"
    );
}
