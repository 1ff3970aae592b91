use super::*;

fn mapping(code: &str, emits: Emits) -> Mapping {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.jq");
    std::fs::write(&file, code).unwrap();
    Mapping::load(&file, emits, Duration::from_secs(1)).unwrap()
}

fn send(p: Result<Prepared, TransformError>) -> Outgoing {
    match p {
        Ok(Prepared::Send(o)) => o,
        other => panic!("not a request: {other:?}"),
    }
}

fn mapping_error(p: Result<Prepared, TransformError>) -> String {
    match p {
        Err(TransformError::Mapping(why)) => why,
        other => panic!("not a mapping error: {other:?}"),
    }
}

#[test]
fn a_body_mapping_keeps_what_it_does_not_compute_on() {
    let m = mapping("{sku: .item, price: .price, qty: (.qty + 1)}", Emits::Body);
    let out = send(m.apply_blocking(br#"{"item":"A-1","price":12.50,"qty":1}"#, 0));
    assert_eq!(out.body, r#"{"sku":"A-1","price":12.50,"qty":2}"#);
}

#[test]
fn no_output_skips_and_two_outputs_are_an_error() {
    let m = mapping("select(.send)", Emits::Body);
    assert_eq!(
        m.apply_blocking(br#"{"send":false}"#, 0).unwrap(),
        Prepared::Skip
    );
    let m = mapping(".[]", Emits::Body);
    let why = mapping_error(m.apply_blocking(b"[1,2]", 0));
    assert!(
        why.contains("gave 2 outputs") && why.contains("(input: [1,2])"),
        "{why}"
    );
}

#[test]
fn a_runtime_error_names_the_file_the_reason_and_the_input() {
    let m = mapping(".a.b + 1", Emits::Body);
    let why = mapping_error(m.apply_blocking(br#"{"a":"text"}"#, 0));
    assert!(why.contains("m.jq failed: "), "{why}");
    assert!(why.contains(r#"(input: {"a":"text"})"#), "{why}");
}

#[test]
fn a_request_mapping_fills_path_query_and_headers() {
    let m = mapping(
        r#"{body: {qty: .qty}, path: {order_id: .id, loc: "a b/c"}, query: {tag: ["x", "y z"], v: 2}, headers: {"X-Shop": "s1"}}"#,
        Emits::Request,
    );
    let out = send(m.apply_blocking(br#"{"id":9007199254740993,"qty":12.50}"#, 0));
    assert_eq!(out.body, r#"{"qty":12.50}"#);
    assert_eq!(
        out.target("/orders/{order_id}/at/{loc}.json").unwrap(),
        "/orders/9007199254740993/at/a%20b%2Fc.json?tag=x&tag=y%20z&v=2"
    );
    assert_eq!(out.headers[0].0.as_str(), "x-shop");
    assert!(
        out.target("/orders.json")
            .unwrap_err()
            .contains("has no `{loc}`")
    );
    let partial = Outgoing {
        path: vec![("order_id".into(), "1".into())],
        ..Outgoing::default()
    };
    assert!(
        partial
            .target("/o/{order_id}/{line}")
            .unwrap_err()
            .contains("`{line}`")
    );
}

#[test]
fn a_request_mapping_may_not_set_ferrys_own_headers() {
    for h in ["Authorization", "idempotency-key"] {
        let m = mapping(
            &format!(r#"{{body: ., headers: {{"{h}": "x"}}}}"#),
            Emits::Request,
        );
        let why = mapping_error(m.apply_blocking(b"{}", 0));
        assert!(why.contains("ferry sets this header itself"), "{why}");
    }
    let m = mapping(r#"{body: ., extra: 1}"#, Emits::Request);
    assert!(mapping_error(m.apply_blocking(b"{}", 0)).contains("unknown field"));
}

#[test]
fn a_syntax_error_is_reported_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jq");
    std::fs::write(&file, "{\n  sku: .item,\n  price: (.price\n}\n").unwrap();
    let e = Mapping::load(&file, Emits::Body, Duration::from_secs(1)).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with(&format!("{}:", file.display())), "{text}");
    assert!(
        matches!(e, MappingError::Syntax { line: 3 | 4, .. }),
        "{text}"
    );
    let missing = Mapping::load(
        &dir.path().join("nope.jq"),
        Emits::Body,
        Duration::from_secs(1),
    );
    assert!(matches!(missing, Err(MappingError::Read { .. })));
}
